//! The neural network `u_θ`: architecture, parameter layout, initialisation,
//! batched forward jets (DESIGN.md §2), the batched reverse pass, and
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
}
