//! The neural network `u_θ`: architecture, parameter layout, initialisation,
//! batched forward jets (value, gradient, chosen second derivatives and the
//! Laplacian, propagated layer by layer), the batched reverse pass, and
//! save/load as JSON.

mod jet;
mod mlp;
mod simd;
mod transform;

pub use jet::{Channels, JetSpec};
pub use mlp::{Activation, GradSink, Init, JetTape, LayerSlot, Mlp};
pub use transform::{FieldFn, OutputTransform, PointJets, TransformPlan};

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::{Error, Result};

/// Format tag written into every model file.
pub const MODEL_FORMAT: &str = "natgrad-model";
/// Current model-file version.
pub const MODEL_VERSION: u32 = 1;

/// A network together with its parameters: what `model.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedModel {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// File version, [`MODEL_VERSION`].
    pub version: u32,
    /// Layer widths, input first.
    pub widths: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Flat parameters in the layout documented on [`Mlp`].
    pub theta: Vec<f64>,
    /// When the problem used hard constraints, the formula `u = g + ψ·N_θ`
    /// (informational: the file holds the network `N_θ`; the transform is
    /// rebuilt from the problem definition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_transform: Option<String>,
    /// The catalogue problem the network was trained on, if any (`natgrad
    /// eval` rebuilds its output transform from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl SavedModel {
    /// Bundle a network and its parameters.
    pub fn new(mlp: &Mlp, theta: &[f64]) -> Self {
        SavedModel {
            format: MODEL_FORMAT.into(),
            version: MODEL_VERSION,
            widths: mlp.widths().to_vec(),
            activation: mlp.activation(),
            theta: theta.to_vec(),
            output_transform: None,
            problem: None,
        }
    }

    /// Rebuild the network, checking format, version and parameter count.
    pub fn into_parts(self) -> Result<(Mlp, Vec<f64>)> {
        if self.format != MODEL_FORMAT {
            return Err(Error::config(
                "format",
                format!("expected `{MODEL_FORMAT}`, got `{}`", self.format),
            ));
        }
        if self.version != MODEL_VERSION {
            return Err(Error::config(
                "version",
                format!(
                    "model file version {} is not supported (this build reads {MODEL_VERSION})",
                    self.version
                ),
            ));
        }
        let mlp = Mlp::new(self.widths, self.activation)?;
        if self.theta.len() != mlp.n_params() {
            return Err(Error::DimensionMismatch {
                context: format!("model file θ for widths {:?}", mlp.widths()),
                expected: mlp.n_params(),
                got: self.theta.len(),
            });
        }
        if let Some(i) = self.theta.iter().position(|v| !v.is_finite()) {
            return Err(Error::config("theta", format!("entry {i} is not finite")));
        }
        Ok((mlp, self.theta))
    }

    /// Write as pretty JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("model serialises");
        std::fs::write(path.as_ref(), text).map_err(|e| Error::io(path, e))
    }

    /// Read and validate a model file.
    pub fn load(path: impl AsRef<Path>) -> Result<(Mlp, Vec<f64>)> {
        let text =
            std::fs::read_to_string(path.as_ref()).map_err(|e| Error::io(path.as_ref(), e))?;
        let saved: SavedModel = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.as_ref().display().to_string(),
            reason: e.to_string(),
        })?;
        saved.into_parts()
    }
}

/// The solution and, optionally, its derivatives at given points.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Column names: the coordinates `x0, x1, …`, then `u`, then with
    /// derivatives `du_dx0, …` and `laplacian_u`.
    pub columns: Vec<String>,
    /// One row per point, in the order of `columns`.
    pub rows: Vec<Vec<f64>>,
}

impl Evaluation {
    /// As CSV text with a header line.
    pub fn to_csv(&self) -> String {
        let mut s = self.columns.join(",");
        s.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|v| format!("{v:e}")).collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s
    }
}

/// Evaluate `u = N_θ` (or `u = g + ψ·N_θ` with `transform`) at `points`
/// (row-major, `mlp.input_dim()` per point) from exact forward jets; with
/// `derivatives`, also `∂u/∂x_k` for every k and `Δu`.
pub fn evaluate(
    mlp: &Mlp,
    theta: &[f64],
    transform: Option<&OutputTransform>,
    points: &[f64],
    derivatives: bool,
) -> Result<Evaluation> {
    let d = mlp.input_dim();
    if mlp.output_dim() != 1 {
        return Err(Error::config(
            "model",
            format!(
                "evaluation needs a single-output network, this one has {}",
                mlp.output_dim()
            ),
        ));
    }
    let spec = if derivatives {
        JetSpec::value().with_gradient().with_laplacian()
    } else {
        JetSpec::value()
    };
    let requested = spec.resolve(d)?;
    let ch = match transform {
        Some(_) => OutputTransform::augment(&requested).resolve(d)?,
        None => requested,
    };
    let plan = transform.map(|t| t.plan(&ch)).transpose()?;
    let mut tape = JetTape::default();
    mlp.forward_jets_into(theta, points, &ch, &mut tape)?;
    let mut columns: Vec<String> = (0..d).map(|k| format!("x{k}")).collect();
    columns.push("u".into());
    if derivatives {
        columns.extend((0..d).map(|k| format!("du_dx{k}")));
        columns.push("laplacian_u".into());
    }
    let mut jet = vec![0.0; ch.count()];
    let mut scratch = Vec::new();
    let rows = points
        .chunks_exact(d)
        .enumerate()
        .map(|(i, x)| {
            tape.point_jet_in_place(i, &mut jet);
            if let (Some(t), Some(plan)) = (transform, &plan) {
                plan.apply_in_place(&t.point_jets(x, &ch), &mut jet, &mut scratch);
            }
            let mut row = x.to_vec();
            row.push(jet[0]);
            if derivatives {
                for k in 0..d {
                    row.push(jet[ch.first_index(k).expect("gradient requested")]);
                }
                row.push(jet[ch.laplacian_index().expect("Laplacian requested")]);
            }
            row
        })
        .collect();
    Ok(Evaluation { columns, rows })
}

/// Error metrics of a model against reference values
/// ([`crate::problems::Reference::metrics`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// RMS error `√(mean (u_θ − u*)²)` (the ANaGRAM papers' "L2").
    pub l2_abs: f64,
    /// `‖u_θ − u*‖ / ‖u*‖`.
    pub l2_rel: f64,
    /// `max |u_θ − u*|`.
    pub linf: f64,
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_points(rng: &mut ChaCha8Rng, s: usize, d: usize) -> Vec<f64> {
        (0..s * d).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn full_spec(d: usize) -> Channels {
        let mut spec = JetSpec::value().with_gradient().with_laplacian();
        for k in 0..d {
            for l in k..d {
                spec = spec.with_second(k, l);
            }
        }
        spec.resolve(d).unwrap()
    }

    /// Jets against central finite differences of the network itself.
    #[test]
    fn jets_match_finite_differences() {
        for act in [Activation::Tanh, Activation::Sin] {
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let mlp = Mlp::new(vec![3, 6, 5, 2], act).unwrap();
            let theta = mlp.init(Init::Normal { std: 0.7 }, 1);
            let d = 3;
            let x = random_points(&mut rng, 4, d);
            let ch = full_spec(d);
            let tape = mlp.forward_jets(&theta, &x, &ch).unwrap();
            let grad_ch = JetSpec::value().with_gradient().resolve(d).unwrap();
            let h = 1e-5;
            for i in 0..4 {
                for k in 0..d {
                    let mut xp = x[i * d..(i + 1) * d].to_vec();
                    let mut xm = xp.clone();
                    xp[k] += h;
                    xm[k] -= h;
                    let vp = mlp.values(&theta, &xp).unwrap();
                    let vm = mlp.values(&theta, &xm).unwrap();
                    let gp = mlp.forward_jets(&theta, &xp, &grad_ch).unwrap();
                    let gm = mlp.forward_jets(&theta, &xm, &grad_ch).unwrap();
                    for o in 0..2 {
                        let fd = (vp[o] - vm[o]) / (2.0 * h);
                        let jet = tape.at(o, ch.first_index(k).unwrap(), i);
                        assert!((fd - jet).abs() < 1e-8, "{act:?} ∂_{k}u: fd {fd} jet {jet}");
                        for l in 0..d {
                            let c = grad_ch.first_index(l).unwrap();
                            let fd2 = (gp.at(o, c, 0) - gm.at(o, c, 0)) / (2.0 * h);
                            let jet2 = tape.at(o, ch.second_index(k, l).unwrap(), i);
                            assert!(
                                (fd2 - jet2).abs() < 1e-8,
                                "{act:?} ∂_{k}{l}u: fd {fd2} jet {jet2}"
                            );
                        }
                    }
                }
                for o in 0..2 {
                    let lap: f64 = (0..d)
                        .map(|k| tape.at(o, ch.second_index(k, k).unwrap(), i))
                        .sum();
                    let jl = tape.at(o, ch.laplacian_index().unwrap(), i);
                    assert!((lap - jl).abs() < 1e-12, "Δu {lap} vs {jl}");
                }
            }
        }
    }

    /// Every per-point gradient of a random cotangent combination of jet
    /// channels, against central differences in θ; the summed sink equals the
    /// sum of the per-point columns.
    #[test]
    fn backward_matches_finite_differences() {
        for act in [Activation::Tanh, Activation::Sin] {
            let mut rng = ChaCha8Rng::seed_from_u64(12);
            let mlp = Mlp::new(vec![2, 5, 4, 2], act).unwrap();
            let p = mlp.n_params();
            let theta = mlp.init(Init::Normal { std: 0.6 }, 2);
            let s = 3;
            let x = random_points(&mut rng, s, 2);
            let ch = full_spec(2);
            let nc = ch.count();
            let seed: Vec<f64> = (0..2 * nc * s)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let tape = mlp.forward_jets(&theta, &x, &ch).unwrap();
            let mut jac = vec![0.0; p * s];
            mlp.backward(&theta, &tape, &seed, GradSink::PerPoint(&mut jac))
                .unwrap();
            let f = |th: &[f64], i: usize| -> f64 {
                let t = mlp.forward_jets(th, &x, &ch).unwrap();
                let mut acc = 0.0;
                for c in 0..nc {
                    for o in 0..2 {
                        acc += seed[(c * s + i) * 2 + o] * t.at(o, c, i);
                    }
                }
                acc
            };
            let h = 1e-6;
            for i in 0..s {
                for q in 0..p {
                    let mut tp = theta.clone();
                    let mut tm = theta.clone();
                    tp[q] += h;
                    tm[q] -= h;
                    let fd = (f(&tp, i) - f(&tm, i)) / (2.0 * h);
                    let an = jac[i * p + q];
                    assert!(
                        (fd - an).abs() < 1e-7 * (1.0 + an.abs()),
                        "{act:?} point {i} param {q}: fd {fd} vs {an}"
                    );
                }
            }
            let mut sum = vec![0.0; p];
            mlp.backward(&theta, &tape, &seed, GradSink::Sum(&mut sum))
                .unwrap();
            for q in 0..p {
                let col_sum: f64 = (0..s).map(|i| jac[i * p + q]).sum();
                assert!((sum[q] - col_sum).abs() < 1e-12 * (1.0 + col_sum.abs()));
            }
        }
    }

    #[test]
    fn init_is_seeded_and_layout_counts() {
        let mlp = Mlp::new(vec![2, 32, 1], Activation::Tanh).unwrap();
        assert_eq!(mlp.n_params(), 129);
        assert_eq!(mlp.init(Init::default(), 5), mlp.init(Init::default(), 5));
        assert_ne!(mlp.init(Init::default(), 5), mlp.init(Init::default(), 6));
        let g = mlp.init(Init::Glorot, 0);
        let slots = mlp.layers();
        assert!(g[slots[0].b..slots[0].b + 32].iter().all(|&b| b == 0.0));
        assert!(Mlp::new(vec![2], Activation::Tanh).is_err());
        assert!(Mlp::new(vec![2, 0, 1], Activation::Tanh).is_err());
    }

    #[test]
    fn save_load_roundtrip_and_validation() {
        let mlp = Mlp::new(vec![2, 4, 1], Activation::Sin).unwrap();
        let theta = mlp.init(Init::default(), 3);
        let dir = std::env::temp_dir().join(format!("natgrad-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.json");
        SavedModel::new(&mlp, &theta).save(&path).unwrap();
        let (m2, t2) = SavedModel::load(&path).unwrap();
        assert_eq!(m2, mlp);
        assert_eq!(t2, theta);
        let mut bad = SavedModel::new(&mlp, &theta);
        bad.theta.pop();
        assert!(matches!(
            bad.into_parts(),
            Err(Error::DimensionMismatch { .. })
        ));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(SavedModel::load(&path), Err(Error::Parse { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }

    /// `evaluate` against the problem's own solution and central
    /// differences of u, with and without an output transform (burgers:
    /// u = −sin(πx) + t(1 − x²)·N).
    #[test]
    fn evaluation_and_derivatives_match_finite_differences() {
        let pb = crate::problems::burgers().unwrap();
        let mlp = pb.mlp().unwrap();
        let theta = mlp.init(Init::Normal { std: 0.5 }, 8);
        let pts = vec![0.3, -0.4, 0.7, 0.2, 0.9, 0.95];
        for transform in [None, pb.transform.as_ref()] {
            let ev = evaluate(&mlp, &theta, transform, &pts, true).unwrap();
            assert_eq!(
                ev.columns,
                ["x0", "x1", "u", "du_dx0", "du_dx1", "laplacian_u"]
            );
            let u = |x: &[f64]| evaluate(&mlp, &theta, transform, x, false).unwrap().rows[0][2];
            if transform.is_some() {
                let sol = pb.solution(&theta, &pts).unwrap();
                for (r, s) in ev.rows.iter().zip(&sol) {
                    assert!((r[2] - s).abs() < 1e-14, "{} vs {s}", r[2]);
                }
            }
            let h = 1e-4;
            for (i, x) in pts.chunks(2).enumerate() {
                let row = &ev.rows[i];
                let mut lap = 0.0;
                for k in 0..2 {
                    let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
                    xp[k] += h;
                    xm[k] -= h;
                    let d1 = (u(&xp) - u(&xm)) / (2.0 * h);
                    assert!(
                        (d1 - row[3 + k]).abs() < 1e-7,
                        "du/dx{k}: fd {d1} vs {}",
                        row[3 + k]
                    );
                    lap += (u(&xp) - 2.0 * u(x) + u(&xm)) / (h * h);
                }
                assert!((lap - row[5]).abs() < 1e-4, "Δu: fd {lap} vs {}", row[5]);
            }
        }
    }
}
