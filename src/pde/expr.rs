//! Formulas of the coordinates, written as text (`sin(pi*x)*sin(pi*y) + x*y`)
//! and evaluated over any [`Scalar`] — so a manufactured solution given in a
//! run configuration has exact derivatives (dual numbers), e.g. its
//! Laplacian for the source term.
//!
//! Grammar: numbers, `pi`, `e`, the coordinates `x1`, `x2`, …, `xd`
//! (1-based: `x1` is the first axis) with the aliases `x`, `y`, `z` for
//! `x1`, `x2`, `x3` in dimension ≤ 3, `+ − * / ^` (right-associative power),
//! unary minus, parentheses and `sin cos tan exp log sqrt tanh sinh cosh`.
//! Any other name, `x0` included, is an error that lists the accepted ones.

use super::Scalar;
use crate::error::{Error, Result};

/// A parsed formula.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant.
    Num(f64),
    /// Coordinate `k`.
    Var(usize),
    /// `−a`.
    Neg(Box<Expr>),
    /// `a op b`.
    Bin(char, Box<Expr>, Box<Expr>),
    /// `f(a)`.
    Call(Func, Box<Expr>),
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
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    dim: usize,
    text: &'a str,
}

impl Expr {
    /// Parse `text` for points of dimension `dim`; errors say where.
    pub fn parse(text: &str, dim: usize) -> Result<Self> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            dim,
            text,
        };
        let e = p.sum()?;
        p.skip();
        if p.i < p.s.len() {
            return Err(p.error("unexpected input"));
        }
        Ok(e)
    }

    /// The value at `x` (`x.len()` = the dimension it was parsed for).
    pub fn eval<D: Scalar>(&self, x: &[D]) -> D {
        match self {
            Expr::Num(v) => D::from(*v),
            Expr::Var(k) => x[*k],
            Expr::Neg(a) => -a.eval(x),
            Expr::Bin(op, a, b) => {
                let (u, v) = (a.eval(x), b.eval(x));
                match op {
                    '+' => u + v,
                    '-' => u - v,
                    '*' => u * v,
                    '/' => u / v,
                    _ => match **b {
                        Expr::Num(n) if n.fract() == 0.0 && n.abs() < 64.0 => u.powi(n as i32),
                        Expr::Num(n) => u.powf(n),
                        _ => u.powd(v),
                    },
                }
            }
            Expr::Call(f, a) => {
                let u = a.eval(x);
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
                }
            }
        }
    }
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::config(
            "formula",
            format!("{what} at character {} of `{}`", self.i + 1, self.text),
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

    fn sum(&mut self) -> Result<Expr> {
        let mut e = self.product()?;
        loop {
            if self.eat(b'+') {
                e = Expr::Bin('+', Box::new(e), Box::new(self.product()?));
            } else if self.eat(b'-') {
                e = Expr::Bin('-', Box::new(e), Box::new(self.product()?));
            } else {
                return Ok(e);
            }
        }
    }

    fn product(&mut self) -> Result<Expr> {
        let mut e = self.unary()?;
        loop {
            if self.eat(b'*') {
                e = Expr::Bin('*', Box::new(e), Box::new(self.unary()?));
            } else if self.eat(b'/') {
                e = Expr::Bin('/', Box::new(e), Box::new(self.unary()?));
            } else {
                return Ok(e);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat(b'-') {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
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
            return Ok(Expr::Bin('^', Box::new(base), Box::new(exp)));
        }
        Ok(base)
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
            while self.i < self.s.len()
                && (self.s[self.i].is_ascii_digit()
                    || self.s[self.i] == b'.'
                    || ((self.s[self.i] == b'e' || self.s[self.i] == b'E')
                        && self.i + 1 < self.s.len()
                        && (self.s[self.i + 1].is_ascii_digit() || self.s[self.i + 1] == b'-')))
            {
                if self.s[self.i] == b'e' || self.s[self.i] == b'E' {
                    self.i += 1;
                }
                self.i += 1;
            }
            let t = &self.text[start..self.i];
            return t
                .parse()
                .map(Expr::Num)
                .map_err(|_| self.error(&format!("bad number `{t}`")));
        }
        if c.is_ascii_alphabetic() {
            while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
                self.i += 1;
            }
            let name = &self.text[start..self.i];
            let accepted = |p: &Self| {
                let aliases = ["x", "y", "z"][..p.dim.min(3)].join(", ");
                match p.dim {
                    0 => "none (dimension 0)".to_string(),
                    1 => format!("x1 (or {aliases})"),
                    d if d <= 3 => format!("x1 … x{d} (or {aliases})"),
                    d => format!("x1 … x{d}"),
                }
            };
            let coordinate = |k: usize, p: &Self| {
                if k < p.dim {
                    Ok(Expr::Var(k))
                } else {
                    Err(p.error(&format!(
                        "`{name}` is not a coordinate in dimension {}; the coordinates are {}",
                        p.dim,
                        accepted(p)
                    )))
                }
            };
            let alias = |k: usize, p: &Self| {
                if p.dim <= 3 {
                    coordinate(k, p)
                } else {
                    Err(p.error(&format!(
                        "`{name}` is ambiguous in dimension {}; the coordinates are {}",
                        p.dim,
                        accepted(p)
                    )))
                }
            };
            return match name {
                "pi" => Ok(Expr::Num(std::f64::consts::PI)),
                "e" => Ok(Expr::Num(std::f64::consts::E)),
                "x" => alias(0, self),
                "y" => alias(1, self),
                "z" => alias(2, self),
                _ if name.len() > 1
                    && name.starts_with('x')
                    && name[1..].chars().all(|c| c.is_ascii_digit()) =>
                {
                    match name[1..].parse::<usize>() {
                        Ok(k) if k >= 1 => coordinate(k - 1, self),
                        _ => Err(self.error(&format!(
                            "`{name}` is not a coordinate (they count from 1); the coordinates are {}",
                            accepted(self)
                        ))),
                    }
                }
                _ => {
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
                        _ => return Err(self.error(&format!("unknown name `{name}`"))),
                    };
                    if !self.eat(b'(') {
                        return Err(self.error(&format!("expected `(` after `{name}`")));
                    }
                    let a = self.sum()?;
                    if !self.eat(b')') {
                        return Err(self.error("expected `)`"));
                    }
                    Ok(Expr::Call(f, Box::new(a)))
                }
            };
        }
        Err(self.error(&format!("unexpected `{}`", c as char)))
    }
}

/// `Δf` at `x` by hyper-dual numbers (exact second derivatives).
pub fn laplacian(f: &Expr, x: &[f64]) -> f64 {
    use num_dual::HyperDual64;
    (0..x.len())
        .map(|k| {
            let v: Vec<HyperDual64> = x
                .iter()
                .enumerate()
                .map(|(j, &xj)| {
                    let mut h = HyperDual64::from(xj);
                    if j == k {
                        h.eps1 = 1.0;
                        h.eps2 = 1.0;
                    }
                    h
                })
                .collect();
            f.eval(&v).eps1eps2
        })
        .sum()
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
        for bad in ["sin(x", "x +", "foo(x)", "y", "3..2", "x $ 2", ""] {
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
        ] {
            let e = Expr::parse(bad, dim).unwrap_err().to_string();
            assert!(e.contains(want), "`{bad}`: {e}");
        }
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
    }
}
