//! The conditions of a custom problem (`[[condition]]`) and where their
//! points go.

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Context, PointMethod};
use crate::error::{Error, Result};
use crate::geometry::{
    BoxDomain, Domain, Ends, Interval, contains_near, halton, linspace, midpoints, sample_boundary,
    sample_face, sample_interior, tensor_grid,
};
use crate::pde::expr::{Deriv, Expr, Scope};
use crate::pde::{Data, Formula};
use crate::residual::{Block, Combination, Region};

/// What a condition imposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionKind {
    /// `u = value`.
    Dirichlet,
    /// `∂u/∂n = value`, `n` the outward unit normal (spatial part).
    Neumann,
    /// `∂u/∂n + alpha·u = value`.
    Robin,
    /// `u = value` at `t = t0` (and `u_t = u_t` for equations second
    /// order in time).
    Initial,
    /// `u = value` at the single point `at` (pins the constant of a pure
    /// Neumann problem).
    Point,
    /// `u` (and `∂u/∂x_k` when the equation is second order in `x_k`) equal
    /// on the two opposite sides `x_k = lo` and `x_k = hi` of a box, `on`
    /// naming the coordinate `x_k`: matched pairs of points.
    Periodic,
    /// The mean of `u − value` over the domain's points is zero (by default
    /// the interior's count of uniform points): fixes the constant of a pure
    /// Neumann problem.
    Mean,
}

/// One `[[condition]]` entry.
///
/// - `kind`: see [`ConditionKind`].
/// - `on`: `"boundary"` (default; for space-time problems the lateral
///   boundary), `"initial"` (default for `kind = "initial"`), a side of a
///   box `"x1 = 0"`, `"y = 1"`, `"t = 1"` (`left`/`right` for x, `bottom`/`top`
///   for y, `front`/`back` for z).
/// - `value`: a formula of the coordinates; absent, the manufactured
///   solution gives it.
/// - `u_t`: the initial time derivative, for equations with `u_tt`.
/// - `alpha`: Robin's coefficient.
/// - `at`: the point of `kind = "point"` (every input, time first).
/// - `weight`: the block's loss weight (default 1): residuals are scaled by √weight.
/// - `points`, `method`: how many points and how they are placed (default:
///   `problem.boundary_points`, uniform).
/// - `name`: the block's name in the history (default from `on`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// What is imposed.
    pub kind: ConditionKind,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// The imposed value, a formula of the coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Initial time derivative (second order in time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u_t: Option<String>,
    /// Robin coefficient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// The point of a point condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Vec<f64>>,
    /// Loss weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Number of points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<usize>,
    /// Placement of the points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<PointMethod>,
    /// Block name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Where a condition's points lie.
enum Place {
    Boundary,
    Initial,
    Face {
        axis: usize,
        upper: bool,
    },
    Point(Vec<f64>),
    Opposite {
        axis: usize,
    },
    Interior,
    /// The part of the boundary where a predicate holds.
    Where(Predicate),
}

/// `lhs op rhs`, a comparison of two formulas of the coordinates.
struct Predicate {
    lhs: Expr,
    op: &'static str,
    rhs: Expr,
}

impl Predicate {
    /// Whether it holds at `x`.
    fn holds(&self, x: &[f64]) -> bool {
        let (a, b) = (self.lhs.eval(x), self.rhs.eval(x));
        match self.op {
            "<" => a < b,
            "<=" => a <= b,
            ">" => a > b,
            _ => a >= b,
        }
    }
}

impl ConditionSpec {
    /// `u = u*` on the whole boundary (the legacy Poisson problem's condition).
    pub(super) fn dirichlet_boundary() -> Self {
        ConditionSpec {
            kind: ConditionKind::Dirichlet,
            on: None,
            value: None,
            u_t: None,
            alpha: None,
            at: None,
            weight: None,
            points: None,
            method: None,
            name: None,
        }
    }

    fn place(&self, i: usize, ctx: &Context<'_>) -> Result<(Place, String)> {
        let field = format!("condition[{i}].on");
        let sc = &ctx.scope;
        if self.kind == ConditionKind::Point {
            if self.on.as_deref().is_some_and(|o| o != "point") {
                return Err(Error::config(
                    field,
                    "a point condition is placed by `at`, not `on`",
                ));
            }
            let at = self.at.clone().ok_or_else(|| {
                Error::config(
                    format!("condition[{i}].at"),
                    format!("missing: the point, {} coordinates", sc.inputs()),
                )
            })?;
            if at.len() != sc.inputs() || !contains_near(&*ctx.domain, &at) {
                return Err(Error::config(
                    format!("condition[{i}].at"),
                    format!(
                        "{at:?} is not a point of the domain ({} coordinates{})",
                        sc.inputs(),
                        if sc.time { ", time first" } else { "" }
                    ),
                ));
            }
            return Ok((Place::Point(at), "point".into()));
        }
        if self.at.is_some() {
            return Err(Error::config(
                format!("condition[{i}].at"),
                "only for kind = \"point\"",
            ));
        }
        if self.kind == ConditionKind::Mean {
            return match self.on.as_deref().map(str::trim) {
                None | Some("interior") => Ok((Place::Interior, "mean".into())),
                Some(_) => Err(Error::config(
                    field,
                    "a mean condition is taken over the interior (on = \"interior\")",
                )),
            };
        }
        if self.kind == ConditionKind::Periodic {
            let on = self.on.as_deref().map(str::trim).ok_or_else(|| {
                Error::config(&field, "missing: the periodic coordinate (on = \"x\")")
            })?;
            let axis = coordinate_axis(on, sc).map_err(|e| Error::config(&field, e))?;
            if sc.time && axis == 0 {
                return Err(Error::config(field, "time cannot be periodic"));
            }
            if ctx.spec.domain.as_box().is_none() {
                return Err(Error::config(
                    field,
                    "periodic conditions need a box domain (opposite sides)",
                ));
            }
            return Ok((Place::Opposite { axis }, format!("periodic-{on}")));
        }
        let default = if self.kind == ConditionKind::Initial {
            "initial"
        } else {
            "boundary"
        };
        let on = self.on.as_deref().unwrap_or(default).trim();
        let place = match on {
            "boundary" => Place::Boundary,
            "initial" => Place::Initial,
            _ if on.contains(['<', '>']) => predicate(on, &field, sc)?,
            _ => self
                .side(on, ctx)
                .map_err(|reason| Error::config(&field, reason))?,
        };
        match (&place, self.kind) {
            (Place::Initial, ConditionKind::Initial) => {}
            (Place::Initial, _) | (_, ConditionKind::Initial) => {
                return Err(Error::config(
                    field,
                    "`kind = \"initial\"` and `on = \"initial\"` go together",
                ));
            }
            _ => {}
        }
        if matches!(place, Place::Initial) && ctx.time.is_none() {
            return Err(Error::config(
                field,
                "an initial condition needs a time variable (problem.time = [t0, t1])",
            ));
        }
        let label: String = on.chars().filter(|c| !c.is_whitespace()).collect();
        Ok((place, label))
    }

    /// A side named `x1 = 0`, `left`, … of the domain's bounding box, which
    /// must be part of the domain's boundary.
    fn side(&self, on: &str, ctx: &Context<'_>) -> std::result::Result<Place, String> {
        let sc = &ctx.scope;
        let named = match on {
            "left" => Some(("x", false)),
            "right" => Some(("x", true)),
            "bottom" => Some(("y", false)),
            "top" => Some(("y", true)),
            "front" => Some(("z", false)),
            "back" => Some(("z", true)),
            _ => None,
        };
        let bb = ctx.domain.bounds();
        let (axis, upper) = if let Some((coord, upper)) = named {
            (coordinate_axis(coord, sc)?, upper)
        } else {
            let (name, value) = on.split_once('=').ok_or_else(|| {
                format!(
                    "`{on}` is not a place: boundary, initial, a side such as `x1 = 0`, or left/right/bottom/top/front/back"
                )
            })?;
            let axis = coordinate_axis(name.trim(), sc)?;
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|_| format!("`{}` in `{on}` is not a number", value.trim()))?;
            let s = bb.side(axis);
            let tol = 1e-12 * (1.0 + s.lo.abs().max(s.hi.abs()));
            if (value - s.lo).abs() <= tol {
                (axis, false)
            } else if (value - s.hi).abs() <= tol {
                (axis, true)
            } else {
                return Err(format!(
                    "`{on}` is not a side of the domain: {} runs from {} to {}",
                    name.trim(),
                    s.lo,
                    s.hi
                ));
            }
        };
        let spatial_box = ctx.spec.domain.as_box().is_some();
        if (axis != 0 || !sc.time) && !spatial_box {
            return Err(format!(
                "`{on}`: named sides exist on box domains only; use on = \"boundary\""
            ));
        }
        Ok(Place::Face { axis, upper })
    }

    /// The blocks of condition `i` (one; two for an initial condition of an
    /// equation second order in time).
    pub(super) fn blocks(
        &self,
        i: usize,
        ctx: &Context<'_>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Block>> {
        let (place, label) = self.place(i, ctx)?;
        let name = self.name.clone().unwrap_or(label);
        if name.trim().is_empty() {
            return Err(Error::config(format!("condition[{i}].name"), "is empty"));
        }
        let weight = self.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight > 0.0) {
            return Err(Error::config(
                format!("condition[{i}].weight"),
                format!("must be finite and > 0, got {weight}"),
            ));
        }
        let n = match (&place, self.points) {
            (Place::Point(_), Some(_)) => {
                return Err(Error::config(
                    format!("condition[{i}].points"),
                    "a point condition has one point",
                ));
            }
            (Place::Point(_), None) => 1,
            (_, Some(n)) => {
                super::check_count(format!("condition[{i}].points"), n)?;
                n
            }
            (Place::Interior, None) => ctx.spec.interior_points,
            (_, None) => ctx.spec.boundary_points,
        };
        let method = self.method.unwrap_or_default();
        let (points, normals, region) = place_points(&place, method, n, ctx, rng)
            .map_err(|(key, reason)| Error::config(format!("condition[{i}].{key}"), reason))?;
        let scope = Scope {
            unknown: true,
            normal: normals.is_some(),
            what: format!("condition[{i}]"),
            ..ctx.scope.clone()
        };
        let value = Expr::Jet(Deriv::Value);
        let normal = Expr::Jet(Deriv::Normal);
        let lhs = match self.kind {
            ConditionKind::Dirichlet
            | ConditionKind::Initial
            | ConditionKind::Point
            | ConditionKind::Mean
            | ConditionKind::Periodic => value,
            ConditionKind::Neumann | ConditionKind::Robin if normals.is_none() => {
                return Err(Error::config(
                    format!("condition[{i}].kind"),
                    "Neumann and Robin conditions need a boundary with normals (not an initial slice or a point)",
                ));
            }
            ConditionKind::Neumann | ConditionKind::Robin
                if matches!(place, Place::Face { axis: 0, .. }) && ctx.scope.time =>
            {
                return Err(Error::config(
                    format!("condition[{i}].kind"),
                    "a normal derivative on a face of constant time is not defined (u_n is spatial); \
                     impose u there, or u_t through an initial condition",
                ));
            }
            ConditionKind::Neumann => normal,
            ConditionKind::Robin => {
                let alpha = self.alpha.ok_or_else(|| {
                    Error::config(
                        format!("condition[{i}].alpha"),
                        "missing: Robin's u_n + alpha·u = value needs alpha",
                    )
                })?;
                if !alpha.is_finite() {
                    return Err(Error::config(
                        format!("condition[{i}].alpha"),
                        format!("must be finite, got {alpha}"),
                    ));
                }
                Expr::Bin(
                    '+',
                    Box::new(normal),
                    Box::new(Expr::Bin('*', Box::new(Expr::Num(alpha)), Box::new(value))),
                )
            }
        };
        if self.alpha.is_some() && self.kind != ConditionKind::Robin {
            return Err(Error::config(
                format!("condition[{i}].alpha"),
                "only for kind = \"robin\"",
            ));
        }
        let data = |text: &Option<String>, field: &str| -> Result<Data> {
            match (text, &ctx.solution) {
                (None, None) if field == "u_t" => Err(Error::config(
                    format!("condition[{i}].u_t"),
                    "missing: the equation is second order in time (u_tt), so its initial \
                     condition also needs u_t = \"…\" (or a manufactured problem.solution)",
                )),
                (Some(t), _) => Ok(Data::Formula(Arc::new(Expr::parse_in(
                    t,
                    &Scope {
                        what: format!("condition[{i}].{field}"),
                        ..ctx.scope.clone()
                    },
                )?))),
                (None, Some(u)) => Ok(Data::Manufactured(u.clone())),
                (None, None) => Err(Error::config(
                    format!("condition[{i}].{field}"),
                    "missing (give a formula, or a manufactured problem.solution)",
                )),
            }
        };
        let value_data = if self.kind == ConditionKind::Periodic {
            if self.value.is_some() {
                return Err(Error::config(
                    format!("condition[{i}].value"),
                    "a periodic condition has no value",
                ));
            }
            Data::Zero
        } else {
            data(&self.value, "value")?
        };
        let op = Formula::new(lhs, value_data, &scope).with_weight(weight);
        let combination = match self.kind {
            ConditionKind::Periodic => Some(Combination::Pairs),
            ConditionKind::Mean => Some(Combination::Mean),
            _ => None,
        };
        let block = |name: String, op: Formula| {
            let mut b = Block::new(name, scope.inputs(), points.clone(), op);
            if let Some(nrm) = &normals {
                b = b.with_normals(nrm.clone());
            }
            if let Some(c) = combination {
                b = b.with_combination(c);
            }
            match region {
                Some(r) => b.with_region(r),
                None => b,
            }
        };
        let mut out = vec![block(name.clone(), op)];
        if let Place::Opposite { axis } = place
            && ctx.second_order_in(axis)
        {
            // Second order in x_k: the derivative must match as well.
            let op =
                Formula::new(Expr::Jet(Deriv::First(axis)), Data::Zero, &scope).with_weight(weight);
            let label = ctx.scope.coordinate_name(axis);
            out.push(block(format!("{name} u_{label}"), op));
        }
        if self.kind == ConditionKind::Initial && ctx.second_order_in_time {
            let op = Formula::new(Expr::Jet(Deriv::First(0)), data(&self.u_t, "u_t")?, &scope)
                .with_weight(weight);
            out.push(block(format!("{name} u_t"), op));
        } else if self.u_t.is_some() {
            return Err(Error::config(
                format!("condition[{i}].u_t"),
                "only for the initial condition of an equation second order in time (with u_tt)",
            ));
        }
        Ok(out)
    }
}

/// `on = "x < 0"`: the part of the boundary where a comparison of two
/// formulas of the coordinates holds.
fn predicate(on: &str, field: &str, sc: &Scope) -> Result<Place> {
    let (at, op) = ["<=", ">=", "<", ">"]
        .iter()
        .filter_map(|op| on.find(op).map(|k| (k, *op)))
        .min_by_key(|&(k, op)| (k, std::cmp::Reverse(op.len())))
        .expect("a comparison");
    let scope = Scope {
        what: field.to_string(),
        ..sc.clone()
    };
    Ok(Place::Where(Predicate {
        lhs: Expr::parse_part(on, 0..at, &scope)?,
        op,
        rhs: Expr::parse_part(on, at + op.len()..on.len(), &scope)?,
    }))
}

/// The input axis of coordinate `name` (`t`, `x`, `x2`, …).
fn coordinate_axis(name: &str, sc: &Scope) -> std::result::Result<usize, String> {
    match Expr::parse_in(name, sc) {
        Ok(Expr::Var(k)) => Ok(k),
        Ok(_) => Err(format!("`{name}` is not a coordinate")),
        Err(e) => Err(e.to_string()),
    }
}

/// `m` with `m^k` closest to `n` (at least 1).
fn per_axis(n: usize, k: usize) -> usize {
    ((n as f64).powf(1.0 / k.max(1) as f64).round() as usize).max(1)
}

/// The nodes of `[lo, hi]` without its ends, `m` of them.
fn inner_nodes(s: Interval, m: usize) -> Vec<f64> {
    linspace(s.lo, s.hi, m + 2, Ends::Neither)
}

/// The tensor grid of the box's inner nodes, `m` per axis with `m^d`
/// closest to `n`.
fn inner_grid(b: &BoxDomain, n: usize) -> Vec<f64> {
    box_grid(b, per_axis(n, b.dim()), inner_nodes)
}

/// The tensor grid of `nodes(side, m)` over every side of the box.
fn box_grid(b: &BoxDomain, m: usize, nodes: impl Fn(Interval, usize) -> Vec<f64>) -> Vec<f64> {
    tensor_grid(
        &(0..b.dim())
            .map(|k| nodes(b.side(k), m))
            .collect::<Vec<_>>(),
    )
}

/// Halton points of `bounds` accepted by `keep`, `n` of them (or an error
/// when too few are accepted).
fn halton_kept(
    bounds: &BoxDomain,
    n: usize,
    keep: impl Fn(&[f64]) -> bool,
) -> std::result::Result<Vec<f64>, String> {
    let d = bounds.dim();
    let mut out = Vec::with_capacity(n * d);
    let mut skip = 0;
    while out.len() < n * d && skip < 1000 * n as u64 + 10_000 {
        let batch = halton(bounds, n, skip).map_err(|e| e.to_string())?;
        skip += n as u64;
        for x in batch.chunks_exact(d) {
            if out.len() < n * d && keep(x) {
                out.extend_from_slice(x);
            }
        }
    }
    if out.len() < n * d {
        return Err("hardly any Halton point falls inside; use method = \"uniform\"".into());
    }
    Ok(out)
}

/// The interior points of a custom problem.
pub(super) fn place_interior(
    domain: &dyn Domain,
    spatial_box: Option<BoxDomain>,
    method: PointMethod,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> std::result::Result<Vec<f64>, String> {
    let bounds = domain.bounds();
    match method {
        PointMethod::Uniform => Ok(sample_interior(domain, n, rng)),
        PointMethod::Grid => {
            if spatial_box.is_none() {
                return Err("method = \"grid\" needs a box domain".into());
            }
            Ok(inner_grid(&bounds, n))
        }
        PointMethod::ClosedGrid => {
            if spatial_box.is_none() {
                return Err("method = \"closed-grid\" needs a box domain".into());
            }
            let m = per_axis(n, bounds.dim()).max(2);
            Ok(box_grid(&bounds, m, |s, m| {
                linspace(s.lo, s.hi, m, Ends::Both)
            }))
        }
        PointMethod::MidpointGrid => {
            if spatial_box.is_none() {
                return Err("method = \"midpoint-grid\" needs a box domain".into());
            }
            let m = per_axis(n, bounds.dim());
            Ok(box_grid(&bounds, m, |s, m| midpoints(s.lo, s.hi, m)))
        }
        PointMethod::Halton => halton_kept(&bounds, n, |x| domain.sdf(x) < 0.0),
    }
}

/// A placement error: the key it is about (`on` or `method`) and why.
type Misplaced = (&'static str, String);

/// An error about the placement method.
fn method_error(reason: impl Into<String>) -> Misplaced {
    ("method", reason.into())
}

/// An error about where the points go.
fn on_error(reason: impl Into<String>) -> Misplaced {
    ("on", reason.into())
}

/// The error of an interior-only method given to a condition.
fn interior_grid_misplaced(method: PointMethod) -> Misplaced {
    let name = match method {
        PointMethod::MidpointGrid => "midpoint-grid",
        _ => "closed-grid",
    };
    method_error(format!(
        "\"{name}\" places interior points only; conditions take uniform, grid or halton"
    ))
}

/// Points, normals and held-out region of a condition's block.
#[allow(clippy::type_complexity)]
fn place_points(
    place: &Place,
    method: PointMethod,
    n: usize,
    ctx: &Context<'_>,
    rng: &mut ChaCha8Rng,
) -> std::result::Result<(Vec<f64>, Option<Vec<f64>>, Option<Region>), Misplaced> {
    let bounds = ctx.domain.bounds();
    let dd = bounds.dim();
    if matches!(method, PointMethod::ClosedGrid | PointMethod::MidpointGrid) {
        return Err(interior_grid_misplaced(method));
    }
    match place {
        Place::Point(at) => Ok((at.clone(), None, None)),
        Place::Where(predicate) => {
            if method != PointMethod::Uniform {
                return Err(method_error(
                    "a boundary part given by a predicate takes method = \"uniform\"",
                ));
            }
            let (mut p, mut nrm) = (Vec::with_capacity(n * dd), Vec::with_capacity(n * dd));
            for round in 0..1000 {
                if p.is_empty() && round == 20 {
                    break;
                }
                let (bp, bn) = sample_boundary(&*ctx.domain, n, rng);
                for (x, v) in bp.chunks_exact(dd).zip(bn.chunks_exact(dd)) {
                    if p.len() < n * dd && predicate.holds(x) {
                        p.extend_from_slice(x);
                        nrm.extend_from_slice(v);
                    }
                }
                if p.len() == n * dd {
                    break;
                }
            }
            if p.len() < n * dd {
                return Err(on_error(
                    "the predicate holds on (almost) none of the boundary: no points",
                ));
            }
            // Held out on its own points: fresh ones would need the predicate too.
            Ok((p, Some(nrm), None))
        }
        Place::Interior => Ok((
            place_interior(&*ctx.domain, ctx.spec.domain.as_box(), method, n, rng)
                .map_err(method_error)?,
            None,
            Some(Region::Interior),
        )),
        Place::Opposite { axis } => {
            let lower_face = Place::Face {
                axis: *axis,
                upper: false,
            };
            let lower = place_points(&lower_face, method, n, ctx, rng)?.0;
            let mut upper = lower.clone();
            let hi = bounds.side(*axis).hi;
            for x in upper.chunks_exact_mut(dd) {
                x[*axis] = hi;
            }
            let mut points = lower;
            points.extend(upper);
            Ok((points, None, Some(Region::Opposite { axis: *axis })))
        }
        Place::Boundary => match method {
            PointMethod::Uniform => {
                let (p, nrm) = sample_boundary(&*ctx.domain, n, rng);
                Ok((p, Some(nrm), Some(Region::Boundary)))
            }
            PointMethod::Grid
                if ctx.time.is_none() && dd == 2 && ctx.spec.domain.as_box().is_some() =>
            {
                let m = (n as f64 / 4.0).round() as usize + 1;
                let (p, nrm) = bounds
                    .boundary_loop_2d(m.max(2))
                    .map_err(|e| method_error(e.to_string()))?;
                Ok((p, Some(nrm), Some(Region::Boundary)))
            }
            _ => Err(method_error(format!(
                "on = \"boundary\" takes method = \"uniform\"{} (or name the sides)",
                if ctx.time.is_none() && dd == 2 {
                    ", or \"grid\" on a 2-D box"
                } else {
                    ""
                }
            ))),
        },
        Place::Initial => {
            let t0 = bounds.side(0).lo;
            let space = &ctx.space;
            let spatial = match method {
                PointMethod::Uniform => sample_interior(&**space, n, rng),
                PointMethod::Grid => inner_grid(
                    &ctx.spec
                        .domain
                        .as_box()
                        .ok_or_else(|| method_error("method = \"grid\" needs a box domain"))?,
                    n,
                ),
                PointMethod::Halton => {
                    halton_kept(&space.bounds(), n, |x| space.sdf(x) < 0.0).map_err(method_error)?
                }
                PointMethod::ClosedGrid | PointMethod::MidpointGrid => {
                    return Err(interior_grid_misplaced(method));
                }
            };
            let d = space.dim();
            let points = spatial
                .chunks_exact(d)
                .flat_map(|x| std::iter::once(t0).chain(x.iter().copied()))
                .collect();
            Ok((
                points,
                None,
                Some(Region::Face {
                    axis: 0,
                    upper: false,
                }),
            ))
        }
        Place::Face { axis, upper } => {
            let face = bounds.face(*axis, *upper);
            let fixed = if *upper {
                bounds.side(*axis).hi
            } else {
                bounds.side(*axis).lo
            };
            let points = match method {
                PointMethod::Uniform => sample_face(&*ctx.domain, &face, n, rng, |_| true)
                    .ok_or_else(|| on_error("the side hardly meets the domain"))?,
                PointMethod::Grid => {
                    if ctx.spec.domain.as_box().is_none() {
                        return Err(method_error("method = \"grid\" needs a box domain"));
                    }
                    let m = per_axis(n, dd - 1);
                    let free: Vec<Vec<f64>> = (0..dd)
                        .filter(|&k| k != *axis)
                        .map(|k| inner_nodes(bounds.side(k), m))
                        .collect();
                    bounds
                        .face_points(&face, &free)
                        .map_err(|e| method_error(e.to_string()))?
                }
                PointMethod::Halton => {
                    let free = BoxDomain::new(
                        (0..dd)
                            .filter(|&k| k != *axis)
                            .map(|k| bounds.side(k))
                            .collect(),
                    )
                    .map_err(|e| method_error(e.to_string()))?;
                    let lift = |x: &[f64]| {
                        let mut y = x.to_vec();
                        y.insert(*axis, fixed);
                        y
                    };
                    halton_kept(&free, n, |x| contains_near(&*ctx.domain, &lift(x)))
                        .map_err(method_error)?
                        .chunks_exact(dd - 1)
                        .flat_map(lift)
                        .collect()
                }
                PointMethod::ClosedGrid | PointMethod::MidpointGrid => {
                    return Err(interior_grid_misplaced(method));
                }
            };
            let count = points.len() / dd;
            Ok((
                points,
                Some(face.normal.repeat(count)),
                Some(Region::Face {
                    axis: *axis,
                    upper: *upper,
                }),
            ))
        }
    }
}
