//! Problems declared in a run configuration instead of the catalogue: any
//! PDE written as a formula, on any domain, with boundary and initial
//! conditions, optional time, optional hard constraints.
//!
//! ```toml
//! [problem]
//! name = "reaction"
//! domain = { kind = "box", lo = [0], hi = [1] }
//! time = [0, 1]                                   # t is input 0
//! equation = "u_t - 0.1*lap(u) + u^3 - u = f"
//! solution = "exp(-t)*sin(pi*x)"                  # manufactured: defines f and the data
//!
//! [[condition]]
//! on = "boundary"
//! kind = "dirichlet"                              # value from the solution
//!
//! [[condition]]
//! kind = "initial"
//! value = "sin(pi*x)"
//! ```
//!
//! The equation `A = B` becomes the residual `F − f`: with `B` the source
//! `f` (given by `source = "…"` or derived from the manufactured `solution`
//! as `A` applied to its exact jet), or `B` a formula of the coordinates, or
//! anything else moved to the left (`F = A − B`, `f = 0`). `residual = "R"`
//! is `R = 0`. The legacy `pde = "poisson"` is `-lap(u) = f`, with a
//! Dirichlet boundary when no condition is given. Formulas and their names:
//! [`crate::pde::expr`]; conditions: [`ConditionSpec`].
//!
//! Errors are found here, before any training: unknown names, derivatives
//! of order three, conditions on sides the domain lacks, a time-dependent
//! equation without an initial condition, data that is not finite at some
//! training point — each a one-line error naming the field.

mod conditions;

use std::collections::BTreeMap;
use std::sync::Arc;

use num_dual::HyperDual64;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Problem, Reference};
use crate::error::{Error, Result};
use crate::geometry::{
    Ball, BoxDomain, Combine, Constructive, Domain, Interval, Polygon, SpaceTime, sample_interior,
};
use crate::model::{Activation, Init, OutputTransform};
use crate::pde::expr::{Deriv, Expr, Scope};
use crate::pde::{Data, Formula};
use crate::residual::{Block, Region};

pub use conditions::{ConditionKind, ConditionSpec};

/// The spatial domain of a custom problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DomainSpec {
    /// `Π [lo_k, hi_k]`.
    Box {
        /// Lower corner.
        lo: Vec<f64>,
        /// Upper corner.
        hi: Vec<f64>,
    },
    /// `|x − c| ≤ r` in any dimension (`kind = "disk"` or `"ball"`).
    #[serde(alias = "ball")]
    Disk {
        /// Centre.
        center: Vec<f64>,
        /// Radius.
        radius: f64,
    },
    /// A simple polygon.
    Polygon {
        /// Vertices, in order.
        vertices: Vec<[f64; 2]>,
    },
    /// `[−1, 1]² \ (0, 1]×[−1, 0)`.
    LShape,
    /// The union of the parts.
    Union {
        /// Two or more domains of one dimension.
        of: Vec<DomainSpec>,
    },
    /// `from` with `minus` cut out.
    Difference {
        /// The domain cut from.
        from: Box<DomainSpec>,
        /// The part removed.
        minus: Box<DomainSpec>,
    },
}

impl DomainSpec {
    /// The spatial dimension as written (0 for an empty box or union).
    pub fn dim(&self) -> usize {
        match self {
            DomainSpec::Box { lo, .. } => lo.len(),
            DomainSpec::Disk { center, .. } => center.len(),
            DomainSpec::Polygon { .. } | DomainSpec::LShape => 2,
            DomainSpec::Union { of } => of.first().map_or(0, DomainSpec::dim),
            DomainSpec::Difference { from, .. } => from.dim(),
        }
    }

    /// The domain (errors name `problem.domain`).
    pub fn build(&self) -> Result<Arc<dyn Domain>> {
        let bad = |e: Error| Error::config("problem.domain", e.to_string());
        Ok(match self {
            DomainSpec::Box { lo, hi } => Arc::new(box_domain(lo, hi)?),
            DomainSpec::Disk { center, radius } => {
                Arc::new(Ball::new(center.clone(), *radius).map_err(bad)?)
            }
            DomainSpec::Polygon { vertices } => {
                Arc::new(Polygon::new(vertices.clone()).map_err(bad)?)
            }
            DomainSpec::LShape => Arc::new(Polygon::l_shape()),
            DomainSpec::Union { of } => {
                let mut parts = of.iter();
                let first = parts.next().ok_or_else(|| {
                    Error::config("problem.domain", "a union needs at least one part")
                })?;
                let mut d = first.build()?;
                for p in parts {
                    d = Arc::new(Constructive::new(d, p.build()?, Combine::Union).map_err(bad)?);
                }
                d
            }
            DomainSpec::Difference { from, minus } => Arc::new(
                Constructive::new(from.build()?, minus.build()?, Combine::Difference)
                    .map_err(bad)?,
            ),
        })
    }

    /// The box, if the domain is one.
    fn as_box(&self) -> Option<BoxDomain> {
        match self {
            DomainSpec::Box { lo, hi } => box_domain(lo, hi).ok(),
            _ => None,
        }
    }
}

/// The box `Π [lo_k, hi_k]` (errors name `problem.domain`).
fn box_domain(lo: &[f64], hi: &[f64]) -> Result<BoxDomain> {
    if lo.len() != hi.len() || lo.is_empty() {
        return Err(Error::config(
            "problem.domain",
            format!(
                "lo and hi need the same, non-zero length, got {} and {}",
                lo.len(),
                hi.len()
            ),
        ));
    }
    let sides = lo
        .iter()
        .zip(hi)
        .map(|(a, b)| Interval::new(*a, *b))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| Error::config("problem.domain", e.to_string()))?;
    BoxDomain::new(sides)
}

/// How a block's points are placed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointMethod {
    /// Independent uniform draws from the seeded generator (rejection from
    /// the bounding box for curved domains).
    #[default]
    Uniform,
    /// A tensor grid without the ends, `m` nodes per axis with `m^k` the
    /// count closest to the one asked (`k` the dimension of the piece);
    /// boxes and their faces only.
    Grid,
    /// A tensor grid with the ends, `m` nodes per axis (spacing
    /// `(hi − lo)/(m − 1)`) with `m^k` the count closest to the one asked:
    /// interior points up to and on the boundary, so that no strip along
    /// it goes unsampled. Boxes and the interior only.
    ClosedGrid,
    /// The tensor grid of cell midpoints: `m` equal cells per axis (`m^k`
    /// the count closest to the one asked), one point at each centre, half
    /// a spacing from the sides. Boxes and the interior only.
    MidpointGrid,
    /// The Halton sequence (bases 2, 3, 5, …), kept where it falls inside
    /// the piece: low discrepancy, deterministic.
    Halton,
}

/// `u = g + ψ·N_θ`: hard constraints (see [`OutputTransform`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// `g`, a formula of the coordinates: the constrained values where ψ = 0.
    pub g: String,
    /// `ψ`, a formula of the coordinates vanishing exactly where `u = g` is imposed.
    pub psi: String,
}

fn default_interior() -> usize {
    CustomProblem::default_points(2).0
}
fn default_boundary() -> usize {
    CustomProblem::default_points(2).1
}
fn default_eval() -> usize {
    5000
}

/// A PDE declared in a configuration (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProblem {
    /// Legacy shorthand: `poisson` is `equation = "-lap(u) = f"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pde: Option<String>,
    /// `A = B` (see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equation: Option<String>,
    /// `R`, meaning `R = 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<String>,
    /// The source `f`, a formula of the coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The spatial domain.
    pub domain: DomainSpec,
    /// `[t0, t1]`: the problem has a time variable `t` (input 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<[f64; 2]>,
    /// A manufactured solution: it defines `f` and every missing condition
    /// value, and is the reference for the errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    /// The exact solution, for the errors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// A CSV file of reference values for the errors (instead of `exact`):
    /// one row per point, the inputs (time first) then `u`; a first line
    /// that is not numbers is a header. A relative path is taken from the
    /// config file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<std::path::PathBuf>,
    /// Named constants usable in every formula.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, f64>,
    /// Hard constraints `u = g + ψ·N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<TransformSpec>,
    /// Boundary, initial and point conditions (`[[condition]]` in a run file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionSpec>,
    /// Interior collocation points (default 600 per input, see
    /// [`CustomProblem::default_points`]; 1200 when deserialised without one).
    #[serde(default = "default_interior")]
    pub interior_points: usize,
    /// How the interior points are placed (default uniform).
    #[serde(default)]
    pub interior_method: PointMethod,
    /// Points of a condition that does not give its own count (default 200
    /// per input; 400 when deserialised without one).
    #[serde(default = "default_boundary")]
    pub boundary_points: usize,
    /// Evaluation points (uniform in the domain, another stream of the seed).
    #[serde(default = "default_eval")]
    pub eval_points: usize,
    /// Seed of the point sets.
    #[serde(default)]
    pub points_seed: u64,
}

impl CustomProblem {
    /// The default point counts for a problem with `inputs` inputs (space
    /// and time): 600 interior points per input and 200 points per condition
    /// per input (1200 and 400 in two dimensions).
    pub fn default_points(inputs: usize) -> (usize, usize) {
        (600 * inputs.max(1), 200 * inputs.max(1))
    }
}

impl Default for CustomProblem {
    fn default() -> Self {
        CustomProblem {
            pde: None,
            equation: None,
            residual: None,
            source: None,
            domain: DomainSpec::LShape,
            time: None,
            solution: None,
            exact: None,
            reference: None,
            params: BTreeMap::new(),
            transform: None,
            conditions: Vec::new(),
            interior_points: default_interior(),
            interior_method: PointMethod::Uniform,
            boundary_points: default_boundary(),
            eval_points: default_eval(),
            points_seed: 0,
        }
    }
}

/// The most points one block may ask for (memory: a 6-D block of this size
/// holds 480 MB of coordinates before any jet).
pub const MAX_POINTS: usize = 10_000_000;

/// A point count: at least 1, at most [`MAX_POINTS`].
fn check_count(field: impl Into<String>, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::config(field, "must be at least 1"));
    }
    if n > MAX_POINTS {
        return Err(Error::config(
            field,
            format!("{n} points: at most {MAX_POINTS} per block"),
        ));
    }
    Ok(())
}

/// A reference CSV: `inputs + 1` numbers per row, an optional header;
/// every point in the domain.
fn read_reference(path: &std::path::Path, inputs: usize, domain: &dyn Domain) -> Result<Reference> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut r = Reference::none();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: std::result::Result<Vec<f64>, _> =
            line.split(',').map(|c| c.trim().parse::<f64>()).collect();
        let bad = |why: String| {
            Error::config(
                "problem.reference",
                format!("{} line {}: {why}", path.display(), i + 1),
            )
        };
        let row = match row {
            Ok(row) => row,
            Err(_) if i == 0 => continue,
            Err(e) => return Err(bad(e.to_string())),
        };
        if row.len() != inputs + 1 {
            return Err(bad(format!(
                "{} columns, expected {} (the inputs{} then u)",
                row.len(),
                inputs + 1,
                if inputs > 1 {
                    ", time first if any,"
                } else {
                    ""
                }
            )));
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(bad("not finite".into()));
        }
        if !crate::geometry::contains_near(domain, &row[..inputs]) {
            return Err(bad(format!("{:?} is not in the domain", &row[..inputs])));
        }
        r.points.extend_from_slice(&row[..inputs]);
        r.values.push(row[inputs]);
    }
    if r.is_empty() {
        return Err(Error::config(
            "problem.reference",
            format!("{} has no rows", path.display()),
        ));
    }
    Ok(r)
}

/// Names a parameter may not take.
const RESERVED: [&str; 21] = [
    "u", "f", "t", "x", "y", "z", "n", "pi", "e", "lap", "grad", "sin", "cos", "tan", "exp", "log",
    "sqrt", "tanh", "sinh", "cosh", "abs",
];

/// What the conditions need from the problem while they are built.
pub(super) struct Context<'a> {
    spec: &'a CustomProblem,
    scope: Scope,
    space: Arc<dyn Domain>,
    domain: Arc<dyn Domain>,
    time: Option<Interval>,
    solution: Option<Arc<Expr>>,
    second_order_in_time: bool,
    equation: Vec<Deriv>,
}

impl Context<'_> {
    /// Whether the equation has a second derivative in input axis `axis`.
    fn second_order_in(&self, axis: usize) -> bool {
        self.equation.iter().any(|d| match *d {
            Deriv::Second(k, l) => k == axis || l == axis,
            Deriv::Laplacian => self.scope.spatial_axes().contains(&axis),
            _ => false,
        })
    }
}

impl CustomProblem {
    /// The names every formula of this problem may use.
    fn scope(&self, dim: usize, what: &str) -> Result<Scope> {
        let mut params = Vec::new();
        for (name, &v) in &self.params {
            let ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let coordinate = name.len() > 1
                && name.starts_with('x')
                && name[1..].chars().all(|c| c.is_ascii_digit());
            if !ident || coordinate || RESERVED.contains(&name.as_str()) || name.starts_with("u_") {
                return Err(Error::config(
                    format!("problem.params.{name}"),
                    "not a usable name: letters, digits and `_`, not a coordinate, `u…`, `f`, a constant or a function",
                ));
            }
            if !v.is_finite() {
                return Err(Error::config(
                    format!("problem.params.{name}"),
                    "must be finite",
                ));
            }
            params.push((name.clone(), v));
        }
        Ok(Scope {
            dim,
            time: self.time.is_some(),
            params,
            what: what.to_string(),
            ..Default::default()
        })
    }

    /// `F` and the data term of the interior residual.
    fn equation(&self, base: &Scope) -> Result<(Expr, Data)> {
        let (text, field, is_equation) = match (&self.equation, &self.residual, &self.pde) {
            (Some(e), None, None) => (e.clone(), "problem.equation", true),
            (None, Some(r), None) => (r.clone(), "problem.residual", false),
            (None, None, Some(p)) if p == "poisson" => {
                if self.solution.is_none() {
                    return Err(Error::config(
                        "problem.solution",
                        "missing: pde = \"poisson\" takes its source and boundary values from a \
                         manufactured solution (or write equation = \"…\" with [[condition]] entries)",
                    ));
                }
                ("-lap(u) = f".to_string(), "problem.pde", true)
            }
            (None, None, Some(p)) => {
                return Err(Error::config(
                    "problem.pde",
                    format!(
                        "unknown PDE `{p}`; known: poisson (or write the equation: equation = \"u_t - lap(u) = f\")"
                    ),
                ));
            }
            (None, None, None) => {
                return Err(Error::config(
                    "problem.equation",
                    "missing: a custom problem needs equation = \"… = …\" (or residual = \"…\", or pde = \"poisson\")",
                ));
            }
            _ => {
                return Err(Error::config(
                    "problem.equation",
                    "give one of equation, residual and pde, not several",
                ));
            }
        };
        let scope = Scope {
            unknown: true,
            source: is_equation,
            what: field.to_string(),
            ..base.clone()
        };
        let (lhs, rhs) = if is_equation {
            let eq = match text.match_indices('=').collect::<Vec<_>>()[..] {
                [(k, _)] => k,
                _ => {
                    return Err(Error::config(
                        field,
                        format!(
                            "`{text}` needs exactly one `=` (write the residual with residual = \"…\")"
                        ),
                    ));
                }
            };
            (
                Expr::parse_part(&text, 0..eq, &scope)?,
                Expr::parse_part(&text, eq + 1..text.len(), &scope)?,
            )
        } else {
            (Expr::parse_in(&text, &scope)?, Expr::Num(0.0))
        };
        let source = || -> Result<Data> {
            match (&self.source, &self.solution) {
                (Some(s), _) => Ok(Data::Formula(Arc::new(self.data_formula(
                    s,
                    base,
                    "problem.source",
                )?))),
                (None, Some(u)) => Ok(Data::Manufactured(Arc::new(self.data_formula(
                    u,
                    base,
                    "problem.solution",
                )?))),
                (None, None) => Err(Error::config(
                    "problem.source",
                    "missing: the equation uses `f`; give source = \"…\" or a manufactured solution = \"…\"",
                )),
            }
        };
        let (f, data) = match (&lhs, &rhs) {
            (a, Expr::Source) | (Expr::Source, a) if !a.reads_source() => (a.clone(), source()?),
            (a, b) if a.reads_source() || b.reads_source() => {
                return Err(Error::config(
                    field,
                    format!("`f` must stand alone on one side of `=` (`… = f`) in `{text}`"),
                ));
            }
            (a, b) if !b.reads_unknown() && *b != Expr::Num(0.0) => {
                (a.clone(), Data::Formula(Arc::new(b.clone())))
            }
            (a, Expr::Num(z)) if *z == 0.0 => (a.clone(), Data::Zero),
            (a, b) => (
                Expr::Bin('-', Box::new(a.clone()), Box::new(b.clone())),
                Data::Zero,
            ),
        };
        if self.source.is_some() && !matches!(rhs, Expr::Source) && !matches!(lhs, Expr::Source) {
            return Err(Error::config(
                "problem.source",
                "the equation does not use `f` (write it as `… = f`)",
            ));
        }
        if !f.reads_unknown() {
            return Err(Error::config(field, format!("`{text}` does not involve u")));
        }
        Ok((f, data))
    }

    /// A formula of the coordinates (and parameters).
    fn data_formula(&self, text: &str, base: &Scope, field: &str) -> Result<Expr> {
        Expr::parse_in(
            text,
            &Scope {
                what: field.to_string(),
                ..base.clone()
            },
        )
    }

    /// Build the problem called `name` (a name not in the catalogue).
    pub fn build(&self, name: &str) -> Result<Problem> {
        for (field, n) in [
            ("problem.interior_points", self.interior_points),
            ("problem.boundary_points", self.boundary_points),
            ("problem.eval_points", self.eval_points),
        ] {
            check_count(field, n)?;
        }
        let space = self.domain.build()?;
        let d = space.dim();
        let time = self
            .time
            .map(|[t0, t1]| {
                Interval::new(t0, t1).map_err(|e| Error::config("problem.time", e.to_string()))
            })
            .transpose()?;
        let domain: Arc<dyn Domain> = match time {
            Some(t) => Arc::new(SpaceTime::new(t, space.clone())),
            None => space.clone(),
        };
        let inputs = domain.dim();
        let base = self.scope(d, "problem")?;
        let (f, data) = self.equation(&base)?;
        let solution = self
            .solution
            .as_ref()
            .map(|s| {
                self.data_formula(s, &base, "problem.solution")
                    .map(Arc::new)
            })
            .transpose()?;
        let exact = match &self.exact {
            Some(e) => Some(Arc::new(self.data_formula(e, &base, "problem.exact")?)),
            None => solution.clone(),
        };
        let transform = self
            .transform
            .as_ref()
            .map(|t| -> Result<OutputTransform> {
                let g = Arc::new(self.data_formula(&t.g, &base, "problem.transform.g")?);
                let psi = Arc::new(self.data_formula(&t.psi, &base, "problem.transform.psi")?);
                Ok(OutputTransform::new(
                    format!("u = {} + ({})·N", t.g, t.psi),
                    move |x: &[HyperDual64]| g.eval(x),
                    move |x: &[HyperDual64]| psi.eval(x),
                ))
            })
            .transpose()?;
        let equation_derivs = f.derivs();
        let second_order_in_time = time.is_some() && equation_derivs.contains(&Deriv::Second(0, 0));
        let first_order_in_time = time.is_some()
            && f.derivs()
                .iter()
                .any(|d| matches!(d, Deriv::First(0) | Deriv::Second(0, _)));
        let interior_scope = Scope {
            unknown: true,
            what: "problem.equation".into(),
            ..base.clone()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(self.points_seed);
        let interior = conditions::place_interior(
            &*domain,
            self.domain.as_box(),
            self.interior_method,
            self.interior_points,
            &mut rng,
        )
        .map_err(|e| Error::config("problem.interior_method", e.to_string()))?;
        let mut blocks = vec![
            Block::new(
                "interior",
                inputs,
                interior,
                Formula::new(f, data, &interior_scope),
            )
            .with_region(Region::Interior),
        ];
        let ctx = Context {
            spec: self,
            scope: base.clone(),
            space: space.clone(),
            domain: domain.clone(),
            time,
            solution: solution.clone(),
            second_order_in_time,
            equation: equation_derivs,
        };
        let legacy = [ConditionSpec::dirichlet_boundary()];
        let list: &[ConditionSpec] = if self.conditions.is_empty() && self.pde.is_some() {
            &legacy
        } else {
            &self.conditions
        };
        for (i, c) in list.iter().enumerate() {
            for b in c.blocks(i, &ctx, &mut rng)? {
                if let Some(j) = blocks.iter().position(|o| o.name() == b.name()) {
                    let what = if j == 0 {
                        "the interior"
                    } else {
                        "another condition"
                    };
                    return Err(Error::config(
                        format!("condition[{i}].name"),
                        format!(
                            "`{}` is already the name of {what}'s block; set a different name",
                            b.name()
                        ),
                    ));
                }
                blocks.push(b);
            }
        }
        if list.is_empty() && transform.is_none() {
            return Err(Error::config(
                "condition",
                "none given: add [[condition]] entries (e.g. on = \"boundary\", kind = \"dirichlet\"), \
                 or hard constraints with [problem.transform]",
            ));
        }
        if first_order_in_time
            && transform.is_none()
            && !list.iter().any(|c| c.kind == ConditionKind::Initial)
        {
            return Err(Error::config(
                "condition",
                "the equation has a time derivative but no condition has kind = \"initial\" \
                 (or impose it with [problem.transform])",
            ));
        }
        for b in &blocks {
            if let Some(i) = b.sources().iter().position(|v| !v.is_finite()) {
                let x = &b.points()[i * inputs..(i + 1) * inputs];
                return Err(Error::config(
                    format!("block `{}`", b.name()),
                    format!("its data (source or condition value) is not finite at {x:?}"),
                ));
            }
        }
        let mut eval_rng = ChaCha8Rng::seed_from_u64(self.points_seed ^ 0xe7a1);
        let reference = match (&exact, &self.reference) {
            (Some(_), Some(_)) if self.exact.is_some() => {
                return Err(Error::config(
                    "problem.reference",
                    "give either exact or reference, not both",
                ));
            }
            (_, Some(path)) => read_reference(path, inputs, &*domain)?,
            (Some(u), None) => {
                let eval = sample_interior(&*domain, self.eval_points, &mut eval_rng);
                let u = u.clone();
                let r = Reference::from_fn(eval, inputs, move |x| u.eval(x));
                if r.values.iter().any(|v| !v.is_finite()) {
                    return Err(Error::config(
                        if self.exact.is_some() {
                            "problem.exact"
                        } else {
                            "problem.solution"
                        },
                        "the solution is not finite everywhere in the domain",
                    ));
                }
                r
            }
            (None, None) => Reference::none(),
        };
        // A configured problem lives for the whole process.
        let coordinates: &'static [&'static str] = Box::leak(
            (0..inputs)
                .map(|k| &*Box::leak(base.coordinate_name(k).into_boxed_str()))
                .collect::<Vec<&'static str>>()
                .into_boxed_slice(),
        );
        Ok(Problem {
            name: Box::leak(name.to_string().into_boxed_str()),
            coordinates,
            widths: vec![inputs, 32, 1],
            activation: Activation::Tanh,
            init: Init::Normal { std: 0.1 },
            blocks,
            domain,
            reference,
            transform,
        })
    }
}

#[cfg(test)]
mod tests;
