//! The CUDA backend of the tall decompositions (feature `cuda`): cuBLAS and
//! cuSOLVER through `cudarc`, loaded when first used, so that building needs
//! no CUDA toolkit and a machine without a device gets an error, not a crash.
//!
//! A tall system `φ x ≈ r` (`S × P`, `S > P`) is decomposed as on the CPU
//! ([`super::SystemSvd`]): Householder QR `φ = Q R` (`geqrf`), `Qᵀ r`
//! (`ormqr`, Q never formed), then an SVD of the `P × P` factor `R`. That last
//! SVD is where cuSOLVER's `gesvd` is accurate but slow (its
//! bidiagonalisation is bound by memory traffic), so it is computed through
//! the symmetric eigenproblem of the Jordan–Wielandt matrix instead:
//!
//! 1. `J = [[0, Rᵀ], [R, 0]]` (order 2P) has the eigenvalues `±σ_i` with
//!    eigenvectors `[v_i; ±u_i]/√2`. `syevd` on `−J` returns them in
//!    ascending order of `−λ`, so the first P eigenvectors belong to
//!    `σ₁ ≥ σ₂ ≥ … ≥ σ_P`. A symmetric eigensolver is backward stable:
//!    each λ is exact for `J + E`, `‖E‖ ≲ ε‖J‖ = εσ₁`, so every σ is
//!    accurate to a few ε·σ₁ — the accuracy of a good SVD, where forming
//!    `RᵀR` would only resolve σ down to ~1e-8·σ₁.
//! 2. The top halves `X` of those eigenvectors point along `v_i` but are not
//!    orthonormal where ±σ pairs mix (σ near ε·σ₁). A Householder QR of `X`
//!    (columns in decreasing σ) gives an exactly orthonormal `V` that keeps
//!    each accurate direction and completes the rest.
//! 3. `W = R V` (`trmm`) has columns `σ_i u_i`; its Householder QR
//!    `W = U T` gives an orthonormal `U_R` and `σ_i = |T_ii|` (signs moved
//!    into U), with `R = U_R T Vᵀ` exactly in exact arithmetic and `T`
//!    diagonal to rounding.
//!
//! Against cuSOLVER's `gesvd` it is more accurate and faster (docs/cuda.md
//! has the H200 measurements). The steps above are also checked on the CPU (faer's symmetric
//! eigensolver) by this module's tests, so that the algorithm is covered
//! where no device is.

use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::{CudaBlas, sys as cb};
use cudarc::cusolver::{DnHandle, sys as cs};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, DevicePtrMut};

use super::{Matrix, Svd};
use crate::error::{Error, Result};

/// The process's CUDA device: opened once, on first use.
pub(crate) struct Gpu {
    name: String,
    handles: Mutex<Handles>,
}

struct Handles {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    dn: DnHandle,
}

static GPU: OnceLock<std::result::Result<Gpu, String>> = OnceLock::new();

impl Gpu {
    /// The device, opened on the first call; the same error on every call
    /// when it cannot be opened.
    pub(crate) fn get() -> Result<&'static Gpu> {
        GPU.get_or_init(open)
            .as_ref()
            .map_err(|e| Error::Device(e.clone()))
    }

    /// The device's name (e.g. `NVIDIA H200`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The handles, locked, with the device's context bound to this thread.
    fn bound(&self) -> Result<std::sync::MutexGuard<'_, Handles>> {
        let h = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        driver(
            h.stream.context().bind_to_thread(),
            "binding the CUDA context",
        )?;
        Ok(h)
    }
}

/// Open device 0 with a cuBLAS and a cuSOLVER handle on its default stream.
/// cudarc panics when a library is missing, so the libraries are looked for
/// first and any panic left is turned into an error.
fn open() -> std::result::Result<Gpu, String> {
    // SAFETY: these only try to load the libraries.
    let present = unsafe {
        [
            (
                cudarc::driver::sys::is_culib_present(),
                "the CUDA driver (libcuda.so)",
            ),
            (cb::is_culib_present(), "cuBLAS (libcublas.so.13)"),
            (cs::is_culib_present(), "cuSOLVER (libcusolver.so.12)"),
        ]
    };
    if let Some((_, what)) = present.iter().find(|(ok, _)| !ok) {
        return Err(format!(
            "{what} not found on the library path (needs an NVIDIA driver and the CUDA 13 libraries)"
        ));
    }
    let attempt = || -> std::result::Result<Gpu, String> {
        let ctx = CudaContext::new(0).map_err(|e| format!("cannot open device 0: {e}"))?;
        // One stream, used by one decomposition at a time: no events needed.
        // SAFETY: every buffer of this module lives on this one stream.
        unsafe { ctx.disable_event_tracking() };
        let name = ctx.name().map_err(|e| format!("device name: {e}"))?;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e}"))?;
        let dn = DnHandle::new(stream.clone()).map_err(|e| format!("cuSOLVER: {e}"))?;
        dn.set_deterministic_mode(cs::cusolverDeterministicMode_t::CUSOLVER_DETERMINISTIC_RESULTS)
            .map_err(|e| format!("cuSOLVER deterministic mode: {e}"))?;
        Ok(Gpu {
            name,
            handles: Mutex::new(Handles { stream, blas, dn }),
        })
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(attempt);
    std::panic::set_hook(hook);
    result.unwrap_or_else(|_| Err("the CUDA libraries failed to load".into()))
}

/// A cuBLAS call's status as a [`Result`].
fn blas(status: cb::cublasStatus_t, call: &str) -> Result<()> {
    status
        .result()
        .map_err(|e| Error::Device(format!("{call}: {e:?}")))
}

/// A cuSOLVER call's status as a [`Result`].
fn solver(status: cs::cusolverStatus_t, call: &str) -> Result<()> {
    status
        .result()
        .map_err(|e| Error::Device(format!("{call}: {e:?}")))
}

/// A driver call's result as a [`Result`].
fn driver<T>(r: std::result::Result<T, cudarc::driver::DriverError>, what: &str) -> Result<T> {
    r.map_err(|e| Error::Device(format!("{what}: {e}")))
}

/// Read-only device pointer of a buffer, at an element offset.
fn ptr(buf: &CudaSlice<f64>, stream: &CudaStream, offset: usize) -> *const f64 {
    let (p, _sync) = buf.device_ptr(stream);
    (p as *const f64).wrapping_add(offset)
}

/// Writable device pointer of a buffer, at an element offset.
fn ptr_mut(buf: &mut CudaSlice<f64>, stream: &CudaStream, offset: usize) -> *mut f64 {
    let (p, _sync) = buf.device_ptr_mut(stream);
    (p as *mut f64).wrapping_add(offset)
}

/// `i32` of a dimension (cuSOLVER's legacy API), or an error for sizes past it.
fn dim(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Device(format!("dimension {n} exceeds the 32-bit API")))
}

/// Device buffers of the tall decomposition, reused from one step to the next.
pub(crate) struct GpuSystem {
    gpu: &'static Gpu,
    /// `(S, P)` the buffers are sized for.
    shape: (usize, usize),
    /// `φᵀ` as uploaded (`P × S`), then scratch for `V` (`P × P`).
    jt: CudaSlice<f64>,
    /// `φ` (`S × P`), then its Householder QR: R above the diagonal,
    /// reflectors below — kept for [`GpuSystem::apply_qt`].
    a: CudaSlice<f64>,
    tau: CudaSlice<f64>,
    /// `r`, then `Qᵀ r` (length S).
    vec: CudaSlice<f64>,
    /// `−J` (`2P × 2P`), then its eigenvectors; `V` forms in the top-left block.
    aug: CudaSlice<f64>,
    eig: CudaSlice<f64>,
    /// The identity, then `W = R V` and `U_R` (`P × P`).
    w: CudaSlice<f64>,
    tau2: CudaSlice<f64>,
    diag: CudaSlice<f64>,
    ones: CudaSlice<f64>,
    work: CudaSlice<f64>,
    lwork: i32,
    info: CudaSlice<i32>,
}

impl std::fmt::Debug for GpuSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuSystem({}, {:?})", self.gpu.name, self.shape)
    }
}

/// Calls whose `devInfo` is checked, in the order of their slots.
const INFO_CALLS: [&str; 7] = [
    "geqrf(φ)",
    "ormqr",
    "syevd",
    "geqrf(X)",
    "orgqr(V)",
    "geqrf(W)",
    "orgqr(U)",
];

impl GpuSystem {
    /// Buffers on the process's device (opened if needed).
    pub(crate) fn new() -> Result<Self> {
        let gpu = Gpu::get()?;
        let h = gpu.handles.lock().unwrap_or_else(|e| e.into_inner());
        let stream = h.stream.clone();
        let alloc = |n: usize| {
            driver(
                stream.alloc_zeros::<f64>(n.max(1)),
                "allocating device memory",
            )
        };
        Ok(GpuSystem {
            gpu,
            shape: (0, 0),
            jt: alloc(1)?,
            a: alloc(1)?,
            tau: alloc(1)?,
            vec: alloc(1)?,
            aug: alloc(1)?,
            eig: alloc(1)?,
            w: alloc(1)?,
            tau2: alloc(1)?,
            diag: alloc(1)?,
            ones: alloc(1)?,
            work: alloc(1)?,
            lwork: 1,
            info: driver(
                stream.alloc_zeros::<i32>(INFO_CALLS.len()),
                "allocating device memory",
            )?,
        })
    }

    /// Size the buffers for an `s × p` system (no-op when they already are).
    fn reserve(&mut self, h: &Handles, s: usize, p: usize) -> Result<()> {
        if self.shape == (s, p) {
            return Ok(());
        }
        let stream = &h.stream;
        let alloc = |n: usize| {
            driver(
                stream.alloc_zeros::<f64>(n.max(1)),
                "allocating device memory",
            )
        };
        self.jt = alloc(s * p)?;
        self.a = alloc(s * p)?;
        self.tau = alloc(p)?;
        self.vec = alloc(s)?;
        self.aug = alloc(4 * p * p)?;
        self.eig = alloc(2 * p)?;
        self.w = alloc(p * p)?;
        self.tau2 = alloc(p)?;
        self.diag = alloc(p)?;
        self.ones = driver(stream.clone_htod(&vec![1.0f64; p]), "uploading")?;
        let (si, pi, p2) = (dim(s)?, dim(p)?, dim(2 * p)?);
        let dn = h.dn.cu();
        let mut need = [0i32; 6];
        // SAFETY: size queries on valid handles and device pointers of the right extents.
        unsafe {
            let (a, tau, aug, eig, w) = (
                ptr_mut(&mut self.a, stream, 0),
                ptr(&self.tau, stream, 0),
                ptr_mut(&mut self.aug, stream, 0),
                ptr(&self.eig, stream, 0),
                ptr_mut(&mut self.w, stream, 0),
            );
            solver(
                cs::cusolverDnDgeqrf_bufferSize(dn, si, pi, a, si, &mut need[0]),
                "geqrf_bufferSize",
            )?;
            solver(
                cs::cusolverDnDormqr_bufferSize(
                    dn,
                    cs::cublasSideMode_t::CUBLAS_SIDE_LEFT,
                    cs::cublasOperation_t::CUBLAS_OP_T,
                    si,
                    1,
                    pi,
                    a,
                    si,
                    tau,
                    ptr(&self.vec, stream, 0),
                    si,
                    &mut need[1],
                ),
                "ormqr_bufferSize",
            )?;
            solver(
                cs::cusolverDnDsyevd_bufferSize(
                    dn,
                    cs::cusolverEigMode_t::CUSOLVER_EIG_MODE_VECTOR,
                    cs::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                    p2,
                    aug,
                    p2,
                    eig,
                    &mut need[2],
                ),
                "syevd_bufferSize",
            )?;
            solver(
                cs::cusolverDnDgeqrf_bufferSize(dn, pi, pi, aug, p2, &mut need[3]),
                "geqrf_bufferSize",
            )?;
            solver(
                cs::cusolverDnDorgqr_bufferSize(dn, pi, pi, pi, aug, p2, tau, &mut need[4]),
                "orgqr_bufferSize",
            )?;
            solver(
                cs::cusolverDnDorgqr_bufferSize(dn, pi, pi, pi, w, pi, tau, &mut need[5]),
                "orgqr_bufferSize",
            )?;
        }
        self.lwork = need.iter().copied().max().unwrap_or(1).max(1);
        self.work = alloc(self.lwork as usize)?;
        self.shape = (s, p);
        Ok(())
    }

    /// Decompose the tall system `(φ, r)`, `φ` given as `jac_t` (`P × S`):
    /// `qtr ← Qᵀ r` (length S) and `out ← (U_R, σ, V)` of the `P × P`
    /// factor, σ decreasing (see the module documentation).
    pub(crate) fn decompose(
        &mut self,
        jac_t: &Matrix,
        r: &[f64],
        qtr: &mut Vec<f64>,
        out: &mut Svd,
    ) -> Result<()> {
        let (p, s) = (jac_t.nrows(), jac_t.ncols());
        debug_assert!(s > p && r.len() == s);
        let gpu = self.gpu;
        let h = gpu.bound()?;
        self.reserve(&h, s, p)?;
        let stream = h.stream.clone();
        let st: &CudaStream = &stream;
        driver(
            stream.memcpy_htod(jac_t.as_slice(), &mut self.jt),
            "uploading φ",
        )?;
        driver(stream.memcpy_htod(r, &mut self.vec), "uploading r")?;
        let (si, pi, p2) = (dim(s)?, dim(p)?, dim(2 * p)?);
        let (dn, bh) = (h.dn.cu(), *h.blas.handle());
        let (one, zero, minus_one) = (1.0f64, 0.0f64, -1.0f64);
        let lwork = self.lwork;
        let info = |k: usize, buf: &mut CudaSlice<i32>| -> *mut i32 {
            let (q, _sync) = buf.device_ptr_mut(st);
            (q as *mut i32).wrapping_add(k)
        };
        use cb::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
        // SAFETY: every pointer is a device buffer of this stream sized by
        // `reserve` for (s, p); leading dimensions match those extents.
        unsafe {
            // φ = (φᵀ)ᵀ into `a` (S × P).
            let a = ptr_mut(&mut self.a, st, 0);
            blas(
                cb::cublasDgeam(
                    bh,
                    CUBLAS_OP_T,
                    CUBLAS_OP_N,
                    si,
                    pi,
                    &one,
                    ptr(&self.jt, st, 0),
                    pi,
                    &zero,
                    a,
                    si,
                    a,
                    si,
                ),
                "geam (transpose φ)",
            )?;
            // φ = QR; Qᵀ r.
            let (tau, work) = (
                ptr_mut(&mut self.tau, st, 0),
                ptr_mut(&mut self.work, st, 0),
            );
            solver(
                cs::cusolverDnDgeqrf(dn, si, pi, a, si, tau, work, lwork, info(0, &mut self.info)),
                "geqrf(φ)",
            )?;
            self.qt_in_place(&h)?;
            // w = I; aug = −J, its lower-left block −R = −triu(a)·I.
            let w = ptr_mut(&mut self.w, st, 0);
            driver(stream.memset_zeros(&mut self.w), "clearing")?;
            blas(
                cb::cublasDcopy_v2(bh, pi, ptr(&self.ones, st, 0), 1, w, pi + 1),
                "copy (identity)",
            )?;
            driver(stream.memset_zeros(&mut self.aug), "clearing")?;
            let aug = ptr_mut(&mut self.aug, st, 0);
            blas(
                cb::cublasDtrmm_v2(
                    bh,
                    cb::cublasSideMode_t::CUBLAS_SIDE_LEFT,
                    cb::cublasFillMode_t::CUBLAS_FILL_MODE_UPPER,
                    CUBLAS_OP_N,
                    cb::cublasDiagType_t::CUBLAS_DIAG_NON_UNIT,
                    pi,
                    pi,
                    &minus_one,
                    a,
                    si,
                    w,
                    pi,
                    aug.wrapping_add(p),
                    p2,
                ),
                "trmm (−R)",
            )?;
            // Eigenvectors of −J, eigenvalues ascending: the first P for σ₁ ≥ … ≥ σ_P.
            solver(
                cs::cusolverDnDsyevd(
                    dn,
                    cs::cusolverEigMode_t::CUSOLVER_EIG_MODE_VECTOR,
                    cs::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                    p2,
                    aug,
                    p2,
                    ptr_mut(&mut self.eig, st, 0),
                    work,
                    lwork,
                    info(2, &mut self.info),
                ),
                "syevd",
            )?;
            // V = orth(X), X the top-left P × P block (in place, leading dimension 2P).
            let tau2 = ptr_mut(&mut self.tau2, st, 0);
            solver(
                cs::cusolverDnDgeqrf(
                    dn,
                    pi,
                    pi,
                    aug,
                    p2,
                    tau2,
                    work,
                    lwork,
                    info(3, &mut self.info),
                ),
                "geqrf(X)",
            )?;
            solver(
                cs::cusolverDnDorgqr(
                    dn,
                    pi,
                    pi,
                    pi,
                    aug,
                    p2,
                    tau2,
                    work,
                    lwork,
                    info(4, &mut self.info),
                ),
                "orgqr(V)",
            )?;
            // W = R V (R = triu(a)), then W = U T.
            blas(
                cb::cublasDtrmm_v2(
                    bh,
                    cb::cublasSideMode_t::CUBLAS_SIDE_LEFT,
                    cb::cublasFillMode_t::CUBLAS_FILL_MODE_UPPER,
                    CUBLAS_OP_N,
                    cb::cublasDiagType_t::CUBLAS_DIAG_NON_UNIT,
                    pi,
                    pi,
                    &one,
                    a,
                    si,
                    aug,
                    p2,
                    w,
                    pi,
                ),
                "trmm (R V)",
            )?;
            // V compacted into `jt` (leading dimension P) for the download.
            let v = ptr_mut(&mut self.jt, st, 0);
            blas(
                cb::cublasDgeam(
                    bh,
                    CUBLAS_OP_N,
                    CUBLAS_OP_N,
                    pi,
                    pi,
                    &one,
                    aug,
                    p2,
                    &zero,
                    v,
                    pi,
                    v,
                    pi,
                ),
                "geam (copy V)",
            )?;
            solver(
                cs::cusolverDnDgeqrf(
                    dn,
                    pi,
                    pi,
                    w,
                    pi,
                    tau2,
                    work,
                    lwork,
                    info(5, &mut self.info),
                ),
                "geqrf(W)",
            )?;
            blas(
                cb::cublasDcopy_v2(bh, pi, w, pi + 1, ptr_mut(&mut self.diag, st, 0), 1),
                "copy (diagonal of T)",
            )?;
            solver(
                cs::cusolverDnDorgqr(
                    dn,
                    pi,
                    pi,
                    pi,
                    w,
                    pi,
                    tau2,
                    work,
                    lwork,
                    info(6, &mut self.info),
                ),
                "orgqr(U)",
            )?;
        }
        // Downloads (synchronising the stream).
        qtr.resize(s, 0.0);
        driver(
            stream.memcpy_dtoh(&self.vec, qtr.as_mut_slice()),
            "downloading Qᵀr",
        )?;
        let infos = driver(stream.clone_dtoh(&self.info), "downloading status")?;
        if let Some(k) = infos.iter().position(|&i| i != 0) {
            return Err(Error::Device(format!(
                "{} reported info = {} on a {s}×{p} system",
                INFO_CALLS[k], infos[k]
            )));
        }
        let mut d = vec![0.0; p];
        driver(
            stream.memcpy_dtoh(&self.diag, d.as_mut_slice()),
            "downloading T",
        )?;
        let Svd { u, s: sigma, v } = out;
        u.resize(p, p);
        v.resize(p, p);
        driver(
            stream.memcpy_dtoh(&self.w.slice(..p * p), u.as_mut_slice()),
            "downloading U",
        )?;
        driver(
            stream.memcpy_dtoh(&self.jt.slice(..p * p), v.as_mut_slice()),
            "downloading V",
        )?;
        finish_on_host(&d, u, sigma, v)
    }

    /// `vec ← Qᵀ vec` with the Householder reflectors in `a`/`tau` (`ormqr`,
    /// Q never formed).
    ///
    /// # Safety
    /// The buffers must be sized for `shape` and `a`/`tau` hold a factorisation.
    unsafe fn qt_in_place(&mut self, h: &Handles) -> Result<()> {
        let (s, p) = self.shape;
        let (si, pi) = (dim(s)?, dim(p)?);
        let st: &CudaStream = &h.stream;
        let info = {
            let (q, _sync) = self.info.device_ptr_mut(st);
            (q as *mut i32).wrapping_add(1)
        };
        // SAFETY: as the caller promises.
        unsafe {
            solver(
                cs::cusolverDnDormqr(
                    h.dn.cu(),
                    cs::cublasSideMode_t::CUBLAS_SIDE_LEFT,
                    cs::cublasOperation_t::CUBLAS_OP_T,
                    si,
                    1,
                    pi,
                    ptr(&self.a, st, 0),
                    si,
                    ptr(&self.tau, st, 0),
                    ptr_mut(&mut self.vec, st, 0),
                    si,
                    ptr_mut(&mut self.work, st, 0),
                    self.lwork,
                    info,
                ),
                "ormqr",
            )
        }
    }

    /// `Qᵀ r` with the reflectors of the last [`GpuSystem::decompose`].
    pub(crate) fn apply_qt(&mut self, r: &[f64]) -> Result<Vec<f64>> {
        let s = self.shape.0;
        let gpu = self.gpu;
        let h = gpu.bound()?;
        driver(h.stream.memcpy_htod(r, &mut self.vec), "uploading r")?;
        // SAFETY: `a`/`tau` hold the last factorisation, `vec` the new r.
        unsafe { self.qt_in_place(&h)? };
        let mut out = vec![0.0; s];
        driver(
            h.stream.memcpy_dtoh(&self.vec, out.as_mut_slice()),
            "downloading Qᵀr",
        )?;
        Ok(out)
    }
}

/// From `T`'s diagonal `d`, `U` (before signs) and `V`: `σ = |d|` with the
/// signs moved into U's columns, then all three sorted by decreasing σ
/// (they already are but for near-ties).
fn finish_on_host(d: &[f64], u: &mut Matrix, sigma: &mut Vec<f64>, v: &mut Matrix) -> Result<()> {
    let p = d.len();
    if d.iter().any(|x| !x.is_finite()) || u.as_slice().iter().any(|x| !x.is_finite()) {
        return Err(Error::LinearAlgebra(format!(
            "the CUDA decomposition of a {p}×{p} factor returned non-finite values"
        )));
    }
    for (j, &dj) in d.iter().enumerate() {
        if dj < 0.0 {
            u.col_mut(j).iter_mut().for_each(|x| *x = -*x);
        }
    }
    sigma.clear();
    sigma.extend(d.iter().map(|x| x.abs()));
    if sigma.windows(2).all(|w| w[0] >= w[1]) {
        return Ok(());
    }
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&i, &j| sigma[j].total_cmp(&sigma[i]));
    let permute = |m: &mut Matrix| {
        let src = m.clone();
        for (k, &j) in order.iter().enumerate() {
            m.col_mut(k).copy_from_slice(src.col(j));
        }
    };
    permute(u);
    permute(v);
    *sigma = order.iter().map(|&j| sigma[j]).collect();
    Ok(())
}

#[cfg(test)]
mod tests;
