//! Formulas written as text (`sin(pi*x)*sin(pi*y) + x*y`,
//! `u_t - 0.25*lap(u) + u^3 - u`) and evaluated over any [`Scalar`] — so a
//! manufactured solution has exact derivatives (dual numbers), and a
//! residual written as a formula has an exact linearisation.
//!
//! Grammar: numbers, `pi`, `e`, `+ − * / ^` (right-associative power),
//! unary minus, parentheses, `sin cos tan exp log sqrt tanh sinh cosh abs`,
//! and names from the formula's [`Scope`]:
//!
//! - the coordinates `x1`, `x2`, …, `xd` (1-based: `x1` is the first spatial
//!   axis) with the aliases `x`, `y`, `z` for `x1`, `x2`, `x3` in spatial
//!   dimension ≤ 3, and `t` when the problem has a time variable;
//! - named parameters (`[problem.params]`), constants;
//! - in residuals only: the unknown `u` and its derivatives `u_x1`,
//!   `u_x1x2`, `u_xy`, `u_t`, `u_tt`, `u_tx` (up to second order), the
//!   spatial Laplacian `lap(u)`, and on boundaries the outward normal
//!   derivative `u_n` (also written `grad(u)·n` or `grad(u).n`);
//! - in an equation's right-hand side only: `f`, the source term.
//!
//! Any other name is an error that lists the accepted ones, with the
//! character where it stands.

use super::Scalar;
use crate::error::{Error, Result};

/// A parsed formula.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant.
    Num(f64),
    /// Input coordinate `k` (time first when the problem has one).
    Var(usize),
    /// A channel of the unknown's jet.
    Jet(Deriv),
    /// The source term `f(x)`.
    Source,
    /// `−a`.
    Neg(Box<Expr>),
    /// `a op b`.
    Bin(char, Box<Expr>, Box<Expr>),
    /// `f(a)`.
    Call(Func, Box<Expr>),
}

/// A derivative of the unknown `u`; axes are input indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deriv {
    /// `u`.
    Value,
    /// `∂_k u`.
    First(usize),
    /// `∂_k ∂_l u` (`k ≤ l`).
    Second(usize, usize),
    /// `Σ_k ∂_k² u` over the spatial axes.
    Laplacian,
    /// `Σ_k n_k ∂_k u` over the spatial axes, `n` the outward unit normal.
    Normal,
}

/// The functions a formula may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// sin
    Sin,
    /// cos
    Cos,
    /// tan
    Tan,
    /// exp
    Exp,
    /// natural log
    Log,
    /// square root
    Sqrt,
    /// tanh
    Tanh,
    /// sinh
    Sinh,
    /// cosh
    Cosh,
    /// absolute value
    Abs,
}

/// The names a formula may use (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Spatial dimension d.
    pub dim: usize,
    /// Whether `t` exists (input axis 0; the spatial axes follow it).
    pub time: bool,
    /// Named constants.
    pub params: Vec<(String, f64)>,
    /// Whether `u` and its derivatives may appear.
    pub unknown: bool,
    /// Whether `u_n` may appear (boundary residuals).
    pub normal: bool,
    /// Whether `f` may appear.
    pub source: bool,
    /// What the formula is, for errors (`the equation`, `condition 2's value`).
    pub what: String,
}

impl Scope {
    /// Formulas of the coordinates `x1 … x_dim` only.
    pub fn space(dim: usize) -> Self {
        Scope {
            dim,
            ..Default::default()
        }
    }

    /// The input index of spatial axis `k` (0-based).
    pub fn spatial_axis(&self, k: usize) -> usize {
        k + usize::from(self.time)
    }

    /// The input axes of space.
    pub fn spatial_axes(&self) -> std::ops::Range<usize> {
        self.spatial_axis(0)..self.spatial_axis(self.dim)
    }

    /// The name of input axis `axis`: `t`, then `x, y, z` in dimension ≤ 3,
    /// else `x1 … xd`.
    pub fn coordinate_name(&self, axis: usize) -> String {
        if self.time && axis == 0 {
            return "t".into();
        }
        let k = axis - usize::from(self.time);
        if self.dim <= 3 {
            ["x", "y", "z"][k].into()
        } else {
            format!("x{}", k + 1)
        }
    }

    /// Number of inputs (space plus time).
    pub fn inputs(&self) -> usize {
        self.dim + usize::from(self.time)
    }

    fn coordinates(&self) -> String {
        let aliases = ["x", "y", "z"][..self.dim.min(3)].join(", ");
        let t = if self.time { "t, " } else { "" };
        match self.dim {
            0 => format!("{t}none"),
            1 => format!("{t}x1 (or {aliases})"),
            d if d <= 3 => format!("{t}x1 … x{d} (or {aliases})"),
            d => format!("{t}x1 … x{d}"),
        }
    }

    fn accepted(&self) -> String {
        let mut names = vec![self.coordinates(), "pi, e".into()];
        if !self.params.is_empty() {
            names.push(
                self.params
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if self.unknown {
            let t = if self.time { ", u_t, u_tt" } else { "" };
            let x = if self.dim == 1 {
                "u_x, u_xx"
            } else {
                "u_x1, u_x1x2"
            };
            names.push(format!("u, {x}{t}, lap(u)"));
            if self.normal {
                names.push("u_n".into());
            }
        }
        if self.source {
            names.push("f".into());
        }
        names.push("sin, cos, tan, exp, log, sqrt, tanh, sinh, cosh, abs".into());
        names.join(", ")
    }
}

/// What a formula's names resolve to at one point.
pub trait Env<D> {
    /// Input coordinate `k`.
    fn coord(&self, k: usize) -> D;
    /// A jet channel of the unknown.
    fn jet(&self, d: Deriv) -> D;
    /// The source term.
    fn source(&self) -> D;
}

/// Coordinates only: the unknown and the source are NaN.
struct Coords<'a, D>(&'a [D]);

impl<D: Scalar> Env<D> for Coords<'_, D> {
    fn coord(&self, k: usize) -> D {
        self.0[k]
    }
    fn jet(&self, _: Deriv) -> D {
        D::from(f64::NAN)
    }
    fn source(&self) -> D {
        D::from(f64::NAN)
    }
}

/// The deepest nesting (parentheses, calls, signs, powers) a formula may have.
const MAX_DEPTH: usize = 200;

struct Parser<'a, 's> {
    s: &'a [u8],
    i: usize,
    /// The start of the name being resolved, where its errors point.
    at: Option<usize>,
    /// Nesting of parentheses and calls (bounded: no stack overflow).
    depth: usize,
    scope: &'s Scope,
    text: &'a str,
}

impl Expr {
    /// Parse `text`, a formula of the coordinates of dimension `dim`.
    pub fn parse(text: &str, dim: usize) -> Result<Self> {
        Self::parse_in(text, &Scope::space(dim))
    }

    /// Parse `text` with the names of `scope`; errors say where.
    pub fn parse_in(text: &str, scope: &Scope) -> Result<Self> {
        Self::parse_part(text, 0..text.len(), scope)
    }

    /// Parse the part `range` of `text` (one side of an equation); errors
    /// quote the whole text, positions counted in it.
    pub fn parse_part(text: &str, range: std::ops::Range<usize>, scope: &Scope) -> Result<Self> {
        let mut p = Parser {
            s: &text.as_bytes()[..range.end],
            i: range.start,
            at: None,
            depth: 0,
            scope,
            text,
        };
        let e = p.sum()?;
        p.skip();
        if p.i < p.s.len() {
            return Err(p.error("unexpected input"));
        }
        Ok(e)
    }

    /// The value at `x` (`x.len()` = the inputs it was parsed for).
    pub fn eval<D: Scalar>(&self, x: &[D]) -> D {
        self.eval_in(&Coords(x))
    }

    /// The value with the names resolved by `env`.
    pub fn eval_in<D: Scalar>(&self, env: &impl Env<D>) -> D {
        match self {
            Expr::Num(v) => D::from(*v),
            Expr::Var(k) => env.coord(*k),
            Expr::Jet(d) => env.jet(*d),
            Expr::Source => env.source(),
            Expr::Neg(a) => -a.eval_in(env),
            Expr::Bin(op, a, b) => {
                let u = a.eval_in(env);
                if *op == '^' {
                    return match **b {
                        Expr::Num(n) if n.fract() == 0.0 && n.abs() < 64.0 => u.powi(n as i32),
                        Expr::Num(n) => u.powf(n),
                        _ => u.powd(b.eval_in(env)),
                    };
                }
                let v = b.eval_in(env);
                match op {
                    '+' => u + v,
                    '-' => u - v,
                    '*' => u * v,
                    _ => u / v,
                }
            }
            Expr::Call(f, a) => {
                let u = a.eval_in(env);
                match f {
                    Func::Sin => u.sin(),
                    Func::Cos => u.cos(),
                    Func::Tan => u.tan(),
                    Func::Exp => u.exp(),
                    Func::Log => u.ln(),
                    Func::Sqrt => u.sqrt(),
                    Func::Tanh => u.tanh(),
                    Func::Sinh => u.sinh(),
                    Func::Cosh => u.cosh(),
                    Func::Abs => {
                        if u.re() < 0.0 {
                            -u
                        } else {
                            u
                        }
                    }
                }
            }
        }
    }

    /// Every node, depth first.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Neg(a) | Expr::Call(_, a) => a.visit(f),
            Expr::Bin(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            _ => {}
        }
    }

    /// The jet channels the formula reads.
    pub fn derivs(&self) -> Vec<Deriv> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Jet(d) = e
                && !out.contains(d)
            {
                out.push(*d);
            }
        });
        out
    }

    /// Whether the formula reads the unknown.
    pub fn reads_unknown(&self) -> bool {
        !self.derivs().is_empty()
    }

    /// Whether the formula reads the source `f`.
    pub fn reads_source(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, Expr::Source));
        found
    }
}

impl Parser<'_, '_> {
    fn error(&self, what: &str) -> Error {
        let field = if self.scope.what.is_empty() {
            "formula".to_string()
        } else {
            self.scope.what.clone()
        };
        Error::config(
            field,
            format!(
                "formula: {what} at character {} of `{}`",
                self.at.unwrap_or(self.i) + 1,
                self.text
            ),
        )
    }

    fn skip(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, t: &str) -> bool {
        self.skip();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<Expr> {
        let mut e = self.product()?;
        loop {
            if self.eat(b'+') {
                e = fold(Expr::Bin('+', Box::new(e), Box::new(self.product()?)));
            } else if self.eat(b'-') {
                e = fold(Expr::Bin('-', Box::new(e), Box::new(self.product()?)));
            } else {
                return Ok(e);
            }
        }
    }

    fn product(&mut self) -> Result<Expr> {
        let mut e = self.unary()?;
        loop {
            if self.eat(b'*') {
                e = fold(Expr::Bin('*', Box::new(e), Box::new(self.unary()?)));
            } else if self.eat(b'/') {
                e = fold(Expr::Bin('/', Box::new(e), Box::new(self.unary()?)));
            } else {
                return Ok(e);
            }
        }
    }

    /// Every nested operand passes here, so this bounds the recursion.
    fn unary(&mut self) -> Result<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("nested more than {MAX_DEPTH} deep")));
        }
        let e = self.unary_inner();
        self.depth -= 1;
        e
    }

    fn unary_inner(&mut self) -> Result<Expr> {
        if self.eat(b'-') {
            return Ok(fold(Expr::Neg(Box::new(self.unary()?))));
        }
        if self.eat(b'+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr> {
        let base = self.atom()?;
        if self.eat(b'^') {
            let exp = self.unary()?;
            return Ok(fold(Expr::Bin('^', Box::new(base), Box::new(exp))));
        }
        Ok(base)
    }

    fn number(&mut self, start: usize) -> Result<Expr> {
        let digit = |c: u8| c.is_ascii_digit();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if digit(c) || c == b'.' {
                self.i += 1;
            } else if (c == b'e' || c == b'E')
                && self.s.get(self.i + 1).is_some_and(|&n| {
                    digit(n)
                        || ((n == b'-' || n == b'+')
                            && self.s.get(self.i + 2).is_some_and(|&m| digit(m)))
                })
            {
                self.i += 2;
            } else {
                break;
            }
        }
        let t = &self.text[start..self.i];
        t.parse()
            .map(Expr::Num)
            .map_err(|_| self.error(&format!("bad number `{t}`")))
    }

    fn atom(&mut self) -> Result<Expr> {
        self.skip();
        if self.eat(b'(') {
            let e = self.sum()?;
            if !self.eat(b')') {
                return Err(self.error("expected `)`"));
            }
            return Ok(e);
        }
        let start = self.i;
        let c = *self
            .s
            .get(self.i)
            .ok_or_else(|| self.error("unexpected end"))?;
        if c.is_ascii_digit() || c == b'.' {
            return self.number(start);
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
            {
                self.i += 1;
            }
            let name = &self.text[start..self.i];
            self.at = Some(start);
            let e = self.name(name, start);
            self.at = None;
            return e;
        }
        Err(self.error(&format!(
            "unexpected `{}`",
            self.text[self.i..].chars().next().unwrap_or('?')
        )))
    }

    /// The spatial coordinate named `name` (`x1`, `x`, …) as an input index,
    /// `None` if `name` is not shaped like one.
    fn coordinate(&self, name: &str) -> Option<Result<usize>> {
        let sc = self.scope;
        let alias = match name {
            "x" => Some(0),
            "y" => Some(1),
            "z" => Some(2),
            _ => None,
        };
        if let Some(k) = alias {
            return Some(if sc.dim <= 3 && k < sc.dim {
                Ok(sc.spatial_axis(k))
            } else if sc.dim > 3 {
                Err(self.error(&format!(
                    "`{name}` is ambiguous in dimension {}; the coordinates are {}",
                    sc.dim,
                    sc.coordinates()
                )))
            } else {
                Err(self.error(&format!(
                    "`{name}` is not a coordinate in dimension {}; the coordinates are {}",
                    sc.dim,
                    sc.coordinates()
                )))
            });
        }
        if name.len() > 1 && name.starts_with('x') && name[1..].chars().all(|c| c.is_ascii_digit())
        {
            return Some(match name[1..].parse::<usize>() {
                Ok(k) if k >= 1 && k <= sc.dim => Ok(sc.spatial_axis(k - 1)),
                Ok(k) if k >= 1 => Err(self.error(&format!(
                    "`{name}` is not a coordinate in dimension {}; the coordinates are {}",
                    sc.dim,
                    sc.coordinates()
                ))),
                _ => Err(self.error(&format!(
                    "`{name}` is not a coordinate (they count from 1); the coordinates are {}",
                    sc.coordinates()
                ))),
            });
        }
        if name == "t" {
            return Some(if sc.time {
                Ok(0)
            } else {
                Err(self.error(&format!(
                    "`t` is not a coordinate: this problem has no time variable (set `time = [t0, t1]`); the coordinates are {}",
                    sc.coordinates()
                )))
            });
        }
        None
    }

    /// `u_<axes>`: the axes of a derivative, in input indices.
    fn derivative(&self, name: &str, axes_text: &str) -> Result<Expr> {
        let sc = self.scope;
        if axes_text == "n" {
            return if sc.normal {
                Ok(Expr::Jet(Deriv::Normal))
            } else {
                Err(self.error("`u_n` (the normal derivative) only exists in boundary conditions"))
            };
        }
        let b = axes_text.as_bytes();
        let mut axes = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let one = match b[i] {
                b't' => {
                    i += 1;
                    "t".to_string()
                }
                b'x' if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    let s = i;
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    axes_text[s..i].to_string()
                }
                b'x' | b'y' | b'z' => {
                    i += 1;
                    (b[i - 1] as char).to_string()
                }
                _ => {
                    return Err(self.error(&format!(
                        "`{name}` is not a derivative of u: write the axes after `u_` ({}, e.g. u_x1, u_x1x2{})",
                        sc.coordinates(),
                        if sc.time { ", u_t" } else { "" }
                    )));
                }
            };
            axes.push(self.coordinate(&one).expect("a coordinate name")?);
        }
        match axes[..] {
            [k] => Ok(Expr::Jet(Deriv::First(k))),
            [k, l] => Ok(Expr::Jet(Deriv::Second(k.min(l), k.max(l)))),
            _ => Err(self.error(&format!(
                "`{name}` is a derivative of order {}; the network's jets go up to second order",
                axes.len()
            ))),
        }
    }

    fn unknown_allowed(&self, name: &str) -> Result<()> {
        if self.scope.unknown {
            Ok(())
        } else {
            Err(self.error(&format!(
                "`{name}` (the unknown) cannot appear here: this is a formula of the coordinates; the accepted names are {}",
                self.scope.accepted()
            )))
        }
    }

    fn name(&mut self, name: &str, start: usize) -> Result<Expr> {
        if let Some(&(_, v)) = self.scope.params.iter().find(|(n, _)| n == name) {
            return Ok(Expr::Num(v));
        }
        if let Some(k) = self.coordinate(name) {
            return Ok(Expr::Var(k?));
        }
        match name {
            "pi" => return Ok(Expr::Num(std::f64::consts::PI)),
            "e" => return Ok(Expr::Num(std::f64::consts::E)),
            "u" => {
                self.unknown_allowed(name)?;
                return Ok(Expr::Jet(Deriv::Value));
            }
            "f" if self.scope.source => return Ok(Expr::Source),
            "lap" | "grad" => {
                self.unknown_allowed(name)?;
                if !(self.eat(b'(') && self.eat(b'u') && self.eat(b')')) {
                    self.i = start;
                    return Err(self.error(&format!("`{name}` applies to `u` only: `{name}(u)`")));
                }
                if name == "lap" {
                    return Ok(Expr::Jet(Deriv::Laplacian));
                }
                if !(self.eat_str("·") || self.eat(b'.')) || !self.eat(b'n') {
                    self.i = start;
                    return Err(self.error("write the normal derivative as `grad(u)·n` or `u_n`"));
                }
                if !self.scope.normal {
                    self.i = start;
                    return Err(self.error(
                        "`grad(u)·n` (the normal derivative) only exists in boundary conditions",
                    ));
                }
                return Ok(Expr::Jet(Deriv::Normal));
            }
            _ => {}
        }
        if let Some(axes) = name.strip_prefix("u_") {
            self.unknown_allowed(name)?;
            return self.derivative(name, axes);
        }
        let f = match name {
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "exp" => Func::Exp,
            "log" => Func::Log,
            "sqrt" => Func::Sqrt,
            "tanh" => Func::Tanh,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "abs" => Func::Abs,
            _ => {
                return Err(self.error(&format!(
                    "unknown name `{name}`; the accepted names are {}",
                    self.scope.accepted()
                )));
            }
        };
        if !self.eat(b'(') {
            return Err(self.error(&format!("expected `(` after `{name}`")));
        }
        self.at = None;
        let a = self.sum()?;
        if !self.eat(b')') {
            return Err(self.error("expected `)`"));
        }
        Ok(fold(Expr::Call(f, Box::new(a))))
    }
}

/// A node whose operands are all constants, replaced by its value (computed
/// by the same arithmetic as evaluation, so the value is bit-identical): an
/// exponent such as `-1` or `(p - 1)` becomes a number, which `^` raises
/// with `powi`/`powf` — exact for negative bases, where the general power
/// `exp(b·ln a)` of dual numbers is NaN.
fn fold(e: Expr) -> Expr {
    let constant = match &e {
        Expr::Neg(a) | Expr::Call(_, a) => matches!(**a, Expr::Num(_)),
        Expr::Bin(_, a, b) => matches!((&**a, &**b), (Expr::Num(_), Expr::Num(_))),
        _ => false,
    };
    if constant {
        Expr::Num(e.eval::<f64>(&[]))
    } else {
        e
    }
}

/// `Δf` at `x` by hyper-dual numbers (exact second derivatives).
pub fn laplacian(f: &Expr, x: &[f64]) -> f64 {
    (0..x.len()).map(|k| second(f, x, k, k)).sum()
}

/// `∂_k f` at `x` (exact, dual numbers).
pub fn first(f: &Expr, x: &[f64], k: usize) -> f64 {
    second_jet(f, x, k, k).eps1
}

/// `∂_k ∂_l f` at `x` (exact, hyper-dual numbers).
pub fn second(f: &Expr, x: &[f64], k: usize, l: usize) -> f64 {
    second_jet(f, x, k, l).eps1eps2
}

fn second_jet(f: &Expr, x: &[f64], k: usize, l: usize) -> num_dual::HyperDual64 {
    use num_dual::HyperDual64;
    let v: Vec<HyperDual64> = x
        .iter()
        .enumerate()
        .map(|(j, &xj)| {
            HyperDual64::new(
                xj,
                if j == k { 1.0 } else { 0.0 },
                if j == l { 1.0 } else { 0.0 },
                0.0,
            )
        })
        .collect();
    f.eval(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let f = Expr::parse("sin(pi*x)*sin(pi*y) + x*y - 2^-1 + 3e-1*x1^2/ (1 + x3)", 3).unwrap();
        let x = [0.3, 0.7, 0.5];
        let expect = (std::f64::consts::PI * 0.3).sin() * (std::f64::consts::PI * 0.7).sin() + 0.21
            - 0.5
            + 0.3 * 0.09 / 1.5;
        assert!((f.eval(&x) - expect).abs() < 1e-15);
        assert_eq!(Expr::parse("-x^2", 1).unwrap().eval(&[3.0]), -9.0);
        assert_eq!(Expr::parse("2^3^2", 1).unwrap().eval(&[0.0]), 512.0);
        assert_eq!(
            Expr::parse("1e+2 + abs(-x)", 1).unwrap().eval(&[3.0]),
            103.0
        );
        // Constant exponents are numbers (powi): exact derivatives for a
        // negative base, where the general dual power would be NaN.
        let f = Expr::parse("x^-1 + x^(2 - 1)", 1).unwrap();
        let Expr::Bin('+', a, _) = &f else {
            panic!("{f:?}")
        };
        assert!(
            matches!(&**a, Expr::Bin('^', _, e) if **e == Expr::Num(-1.0)),
            "{a:?}"
        );
        assert_eq!(first(&f, &[-2.0], 0), -0.25 + 1.0);
        let deep = format!("{}x{}", "(".repeat(5000), ")".repeat(5000));
        let e = Expr::parse(&deep, 1).unwrap_err().to_string();
        assert!(e.contains("nested more than"), "{e}");
        assert!(Expr::parse(&"-".repeat(100_000), 1).is_err());
        for bad in ["sin(x", "x +", "foo(x)", "y", "3..2", "x $ 2", "", "u", "f"] {
            let e = Expr::parse(bad, 1).unwrap_err().to_string();
            assert!(
                e.contains("formula") && e.contains("character"),
                "`{bad}`: {e}"
            );
        }
    }

    /// Coordinates count from 1; `x0`, a coordinate past the dimension and the
    /// `x, y, z` aliases above dimension 3 are errors listing the accepted names.
    #[test]
    fn coordinates_count_from_one() {
        let x = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(Expr::parse("x1*x2", 4).unwrap().eval(&x), 0.1 * 0.2);
        let e = Expr::parse("x4 - x", 3).unwrap_err().to_string();
        assert!(e.contains("`x4`"), "{e}");
        for (bad, dim, want) in [
            (
                "x0",
                2,
                "count from 1); the coordinates are x1 … x2 (or x, y)",
            ),
            ("x3", 2, "not a coordinate in dimension 2"),
            (
                "x",
                4,
                "ambiguous in dimension 4; the coordinates are x1 … x4",
            ),
            ("t", 2, "no time variable"),
        ] {
            let e = Expr::parse(bad, dim).unwrap_err().to_string();
            assert!(e.contains(want), "`{bad}`: {e}");
        }
    }

    /// Residual scopes: time first, derivatives by axis name, the spatial
    /// Laplacian and the normal derivative, parameters, `f`.
    #[test]
    fn residual_names() {
        let sc = Scope {
            dim: 2,
            time: true,
            params: vec![("k".into(), 4.0)],
            unknown: true,
            normal: false,
            source: true,
            what: "problem.equation".into(),
        };
        let e = Expr::parse_in("u_t - k*lap(u) + u_xy + u_x2x1 + u_tx + u^3*t - f", &sc).unwrap();
        assert_eq!(
            e.derivs(),
            vec![
                Deriv::First(0),
                Deriv::Laplacian,
                Deriv::Second(1, 2),
                Deriv::Second(0, 1),
                Deriv::Value
            ]
        );
        assert!(e.reads_source());
        for (bad, want) in [
            ("u_xxx", "order 3"),
            ("u_q", "not a derivative of u"),
            ("u_n", "only exists in boundary conditions"),
            ("grad(u)·n", "only exists in boundary conditions"),
            ("lap(v)", "`lap(u)`"),
            (
                "kk",
                "unknown name `kk`; the accepted names are t, x1 … x2 (or x, y), pi, e, k, u",
            ),
            ("u_x3", "not a coordinate in dimension 2"),
        ] {
            let e = Expr::parse_in(bad, &sc).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains("problem.equation"),
                "`{bad}`: {e}"
            );
        }
        let boundary = Scope {
            normal: true,
            ..sc.clone()
        };
        for text in ["u_n", "grad(u)·n", "grad(u) . n"] {
            assert_eq!(
                Expr::parse_in(text, &boundary).unwrap(),
                Expr::Jet(Deriv::Normal)
            );
        }
        let data = Scope {
            unknown: false,
            source: false,
            ..sc
        };
        let e = Expr::parse_in("u_x + 1", &data).unwrap_err().to_string();
        assert!(e.contains("cannot appear here"), "{e}");
        let e = Expr::parse_in("f", &data).unwrap_err().to_string();
        assert!(e.contains("unknown name `f`"), "{e}");
    }

    /// The hyper-dual Laplacian against the closed form and finite differences.
    #[test]
    fn laplacian_is_exact() {
        let f = Expr::parse("sin(pi*x)*sin(pi*y) + x*y + exp(x)*cosh(y)^2", 2).unwrap();
        let x = [0.3, -0.4];
        let pi = std::f64::consts::PI;
        let expect = -2.0 * pi * pi * (pi * x[0]).sin() * (pi * x[1]).sin()
            + x[0].exp() * (x[1].cosh().powi(2) + 2.0 * (2.0 * x[1]).cosh());
        assert!(
            (laplacian(&f, &x) - expect).abs() < 1e-12,
            "{} vs {expect}",
            laplacian(&f, &x)
        );
        let h = 1e-4;
        let fd: f64 = (0..2)
            .map(|k| {
                let (mut p, mut m) = (x, x);
                p[k] += h;
                m[k] -= h;
                (f.eval(&p) - 2.0 * f.eval(&x) + f.eval(&m)) / (h * h)
            })
            .sum();
        assert!((fd - expect).abs() < 1e-5);
        let mixed = second(&f, &x, 0, 1);
        let fd = {
            let at = |a: f64, b: f64| f.eval(&[x[0] + a, x[1] + b]);
            (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4.0 * h * h)
        };
        assert!((fd - mixed).abs() < 1e-6, "{fd} vs {mixed}");
        let g = first(&f, &x, 1);
        let fd = (f.eval(&[x[0], x[1] + h]) - f.eval(&[x[0], x[1] - h])) / (2.0 * h);
        assert!((fd - g).abs() < 1e-7);
    }
}
