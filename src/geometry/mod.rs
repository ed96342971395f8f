//! Domains, named boundary pieces with outward normals, and point samplers.
//!
//! Points are stored row-major in a flat `Vec<f64>` (`S × dim`). For
//! space-time problems time is axis 0.

mod sampling;
mod shapes;

pub use sampling::{
    Ends, halton, linspace, midpoints, tensor_grid, uniform_face, uniform_faces, uniform_interior,
};
pub use shapes::{
    Ball, Combine, Constructive, Domain, Polygon, SpaceTime, contains_near, sample_boundary,
    sample_face, sample_interior,
};

use crate::error::{Error, Result};

/// A closed interval `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

impl Interval {
    /// `[lo, hi]`; errors unless `lo < hi`, both finite, and `hi − lo` finite.
    pub fn new(lo: f64, hi: f64) -> Result<Self> {
        if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
            return Err(Error::config(
                "interval",
                format!("need finite lo < hi with a finite length, got [{lo}, {hi}]"),
            ));
        }
        Ok(Interval { lo, hi })
    }

    /// Length `hi − lo`.
    pub fn length(&self) -> f64 {
        self.hi - self.lo
    }
}

/// An axis-aligned box `Π_k [lo_k, hi_k]` of any dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxDomain {
    sides: Vec<Interval>,
}

/// A face of a box: the piece `x_axis = lo_axis` (lower) or `x_axis = hi_axis` (upper).
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// A name such as `x1=lo`, or `initial` for the t = t₀ face of a space-time box.
    pub name: String,
    /// The fixed axis.
    pub axis: usize,
    /// Whether this is the upper face.
    pub upper: bool,
    /// Outward unit normal (`∓e_axis`).
    pub normal: Vec<f64>,
}

impl BoxDomain {
    /// A box from its sides.
    pub fn new(sides: Vec<Interval>) -> Result<Self> {
        if sides.is_empty() {
            return Err(Error::config("domain", "a box needs at least one axis"));
        }
        Ok(BoxDomain { sides })
    }

    /// The unit cube `[0, 1]^dim`.
    pub fn unit(dim: usize) -> Self {
        BoxDomain {
            sides: vec![Interval { lo: 0.0, hi: 1.0 }; dim.max(1)],
        }
    }

    /// A space-time box: time interval first (axis 0), then the spatial box.
    pub fn space_time(time: Interval, space: &BoxDomain) -> Self {
        let mut sides = vec![time];
        sides.extend_from_slice(&space.sides);
        BoxDomain { sides }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.sides.len()
    }

    /// Side `k`.
    pub fn side(&self, k: usize) -> Interval {
        self.sides[k]
    }

    /// Volume.
    pub fn measure(&self) -> f64 {
        self.sides.iter().map(Interval::length).product()
    }

    /// Whether `x` lies in the closed box.
    pub fn contains(&self, x: &[f64]) -> bool {
        x.len() == self.dim()
            && x.iter()
                .zip(&self.sides)
                .all(|(v, s)| *v >= s.lo && *v <= s.hi)
    }

    /// The face `x_axis = lo` or `hi`, named `x{axis}=lo|hi`.
    pub fn face(&self, axis: usize, upper: bool) -> Face {
        let mut normal = vec![0.0; self.dim()];
        normal[axis] = if upper { 1.0 } else { -1.0 };
        Face {
            name: format!("x{axis}={}", if upper { "hi" } else { "lo" }),
            axis,
            upper,
            normal,
        }
    }

    /// All `2·dim` faces, lower before upper, by axis.
    pub fn faces(&self) -> Vec<Face> {
        (0..self.dim())
            .flat_map(|k| [self.face(k, false), self.face(k, true)])
            .collect()
    }

    /// Points on `face` whose free coordinates are the tensor product of
    /// `free` (one list per axis other than `face.axis`, in axis order).
    pub fn face_points(&self, face: &Face, free: &[Vec<f64>]) -> Result<Vec<f64>> {
        if free.len() + 1 != self.dim() {
            return Err(Error::DimensionMismatch {
                context: format!("coordinate lists for face `{}`", face.name),
                expected: self.dim() - 1,
                got: free.len(),
            });
        }
        let fixed = if face.upper {
            self.sides[face.axis].hi
        } else {
            self.sides[face.axis].lo
        };
        let mut axes: Vec<Vec<f64>> = free.to_vec();
        axes.insert(face.axis, vec![fixed]);
        Ok(tensor_grid(&axes))
    }

    /// The boundary of a 2-D box traversed counter-clockwise from `(lo, lo)`,
    /// `n − 1` points per side spaced `1/(n−1)` of the side, every corner
    /// counted once: `4(n − 1)` points (the papers' convention; `n = 30`
    /// gives 116). Returns the points and their outward normals; a corner
    /// takes the normal of the side it starts.
    pub fn boundary_loop_2d(&self, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        if self.dim() != 2 || n < 2 {
            return Err(Error::config(
                "boundary_loop_2d",
                format!(
                    "needs a 2-D box and n ≥ 2, got dimension {} and n = {n}",
                    self.dim()
                ),
            ));
        }
        let (a, b) = (self.sides[0], self.sides[1]);
        let mut pts = Vec::with_capacity(8 * (n - 1));
        let mut nrm = Vec::with_capacity(8 * (n - 1));
        let m = (n - 1) as f64;
        for i in 0..n - 1 {
            let t = i as f64 / m;
            pts.extend([a.lo + t * a.length(), b.lo]);
            nrm.extend([0.0, -1.0]);
        }
        for i in 0..n - 1 {
            let t = i as f64 / m;
            pts.extend([a.hi, b.lo + t * b.length()]);
            nrm.extend([1.0, 0.0]);
        }
        for i in 0..n - 1 {
            let t = i as f64 / m;
            pts.extend([a.hi - t * a.length(), b.hi]);
            nrm.extend([0.0, 1.0]);
        }
        for i in 0..n - 1 {
            let t = i as f64 / m;
            pts.extend([a.lo, b.hi - t * b.length()]);
            nrm.extend([-1.0, 0.0]);
        }
        Ok((pts, nrm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn paper_grids_have_paper_counts() {
        let sq = BoxDomain::unit(2);
        let g = linspace(0.0, 1.0, 30, Ends::Neither);
        assert_eq!(tensor_grid(&[g.clone(), g]).len() / 2, 784);
        let (b, n) = sq.boundary_loop_2d(30).unwrap();
        assert_eq!(b.len() / 2, 116);
        // Every point on the boundary, every normal unit and outward.
        for i in 0..116 {
            let x = &b[2 * i..2 * i + 2];
            let nn = &n[2 * i..2 * i + 2];
            assert!(x.iter().any(|&v| v == 0.0 || v == 1.0));
            assert!((nn[0].hypot(nn[1]) - 1.0).abs() < 1e-15);
            let out = [x[0] + 1e-3 * nn[0], x[1] + 1e-3 * nn[1]];
            assert!(!sq.contains(&out), "normal at {x:?} points inward");
        }
        // Distinct points (corners once).
        let mut v: Vec<(i64, i64)> = (0..116)
            .map(|i| ((b[2 * i] * 1e9) as i64, (b[2 * i + 1] * 1e9) as i64))
            .collect();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 116);
    }

    #[test]
    fn midpoints_are_cell_centres() {
        assert_eq!(midpoints(0.0, 1.0, 4), vec![0.125, 0.375, 0.625, 0.875]);
        assert_eq!(midpoints(-1.0, 1.0, 1), vec![0.0]);
        assert!(midpoints(0.0, 1.0, 0).is_empty());
        let m = midpoints(0.0, 1.0, 41);
        assert!((m[0] - 0.5 / 41.0).abs() < 1e-17 && (m[40] - (1.0 - 0.5 / 41.0)).abs() < 1e-15);
    }

    #[test]
    fn faces_and_samplers() {
        let bx = BoxDomain::new(vec![
            Interval::new(0.0, 1.0).unwrap(),
            Interval::new(-1.0, 1.0).unwrap(),
        ])
        .unwrap();
        assert_eq!(bx.measure(), 2.0);
        let faces = bx.faces();
        assert_eq!(faces.len(), 4);
        let f = &faces[3];
        let pts = bx
            .face_points(f, &[linspace(0.0, 1.0, 5, Ends::Both)])
            .unwrap();
        assert_eq!(pts.len(), 10);
        assert!(pts.chunks(2).all(|p| p[1] == 1.0));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let u = uniform_interior(&bx, 1000, &mut rng);
        assert!(u.chunks(2).all(|p| bx.contains(p)));
        let fb = uniform_faces(&bx, 200, &mut rng);
        assert!(
            fb.chunks(2)
                .all(|p| bx.contains(p)
                    && (p[0] == 0.0 || p[0] == 1.0 || p[1] == -1.0 || p[1] == 1.0))
        );
        let h = halton(&bx, 4096, 0).unwrap();
        assert!(h.chunks(2).all(|p| bx.contains(p)));
        let mean0: f64 = h.chunks(2).map(|p| p[0]).sum::<f64>() / 4096.0;
        let mean1: f64 = h.chunks(2).map(|p| p[1]).sum::<f64>() / 4096.0;
        assert!(
            (mean0 - 0.5).abs() < 2e-3 && mean1.abs() < 4e-3,
            "Halton means {mean0} {mean1}"
        );
        assert!(Interval::new(1.0, 0.0).is_err());
    }
}
