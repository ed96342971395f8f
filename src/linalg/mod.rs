//! Dense linear algebra: the only module that talks to faer (and, with the
//! `cuda` feature, to cuBLAS and cuSOLVER).
//!
//! Everything else in natgrad sees plain column-major [`Matrix`] buffers and
//! slices, so a faer version bump or another backend stays local to this
//! module. The parts:
//!
//! * [`matrix`](Matrix): the matrix type, borrowed views and products;
//! * `qr`: the Householder QR without a rank threshold;
//! * `svd`: the accurate thin SVD and the reconstruction-error curve;
//! * `system`: the SVD of a least-squares system `φ x ≈ r` as the
//!   natural-gradient optimisers need it ([`SystemSvd`]), on the CPU or on a
//!   CUDA device ([`Compute`]);
//! * `partial`: the randomized partial SVD of such a system;
//! * `eigen`: symmetric and real eigendecompositions, Cholesky.
//!
//! Accuracy matters more than anywhere else here: AMStraMGRAM reads singular
//! values down to ~1e-15·σ₁. The SVD therefore calls faer's low-level `svd`
//! with `qr_ratio_threshold = ∞` (faer's default first runs a
//! rank-revealing QR on tall matrices that silently zeroes small singular
//! values: on a 2000×4417 PINN Jacobian it zeroed 1753 of 2000 and put
//! errors of ~1000 ε·σ₁ in the 1e-14…1e-8 band), and nothing here forms
//! `φᵀφ` for the SVD-based methods (that squares the condition number and
//! loses every singular value below ~1e-8·σ₁).
//!
//! Parallelism is a parameter, never a global setting: kernels take a
//! [`Par`], and the optimisers get theirs from the run's [`Compute`].

mod compute;
#[cfg(feature = "cuda")]
mod cuda;
mod eigen;
mod matrix;
mod partial;
mod qr;
mod svd;
mod system;
#[cfg(test)]
pub(crate) mod testing;

pub use compute::{CUDA_MIN_FLOPS, Compute, Device, DeviceChoice};
pub use eigen::{
    RealEigen, cholesky, solve_lower_in_place, solve_lower_transposed_in_place, symmetric_eigen,
};
pub use matrix::{
    Layout, Matrix, View, dot, gemv_in_place, gram, matmul, matmul_in_place, matmul_tn, norm2,
};
pub use partial::{PartialInfo, PartialSvdConfig, SvdMethod};
pub use qr::{apply_qt_in_place, householder_q_into, householder_qr_in_place, lstsq_qr};
pub use svd::{Svd, SvdScratch, rce_from_tail_sums, svd_flops};
pub use system::{SystemSvd, SystemSvdWorkspace, system_flops};

/// How many threads one dense kernel (a matrix product, an SVD) may use:
/// natgrad's explicit parallelism parameter, in the manner of faer's `Par`
/// (faer itself stays inside this module).
///
/// A kernel uses the threads only above a measured size threshold
/// ([`PAR_MIN_PRODUCT_FLOPS`], [`PAR_MIN_SVD_FLOPS`]) and never inside a
/// task of [`crate::parallel::map_groups`], whose other tasks hold the other
/// cores. Results depend on the thread count in the last bits (a product
/// split in two sums in another order), never on the run: the same count
/// gives the same result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Par {
    /// One thread (the default).
    #[default]
    Seq,
    /// Up to this many threads (at least 2).
    Threads(usize),
}

impl Par {
    /// Up to `n` threads; 0 and 1 both mean one.
    pub fn threads(n: usize) -> Par {
        if n <= 1 { Par::Seq } else { Par::Threads(n) }
    }

    /// The thread count (1 for [`Par::Seq`]).
    pub fn count(self) -> usize {
        match self {
            Par::Seq => 1,
            Par::Threads(n) => n,
        }
    }

    /// faer's parallelism for one kernel of `flops` operations that pays
    /// from `min_flops` on.
    fn kernel(self, flops: f64, min_flops: f64) -> faer::Par {
        match self {
            Par::Seq => faer::Par::Seq,
            Par::Threads(_) if flops < min_flops || crate::parallel::in_task() => faer::Par::Seq,
            Par::Threads(n) => faer::Par::rayon(n),
        }
    }
}

/// Products of fewer flops run on one thread: below it a second thread
/// slows them down (measurements: docs/notes.md).
pub const PAR_MIN_PRODUCT_FLOPS: f64 = 1e8;

/// SVDs of fewer flops ([`svd_flops`]) run on one thread (1 GFlop: a square
/// SVD of n ≈ 460; measurements: docs/notes.md).
pub const PAR_MIN_SVD_FLOPS: f64 = 1e9;
