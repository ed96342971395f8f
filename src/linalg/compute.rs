//! Where a run's dense linear algebra goes: how many threads a kernel may
//! use, and whether the tall decompositions run on a CUDA device.

use serde::{Deserialize, Serialize};

use super::Par;
use crate::error::{Error, Result};

/// Where the decompositions of the SVD-based optimisers (ANaGRAM,
/// AMStraMGRAM) run. Everything else stays on the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// Always the CPU.
    Cpu,
    /// Always the CUDA device: an error when natgrad was built without the
    /// `cuda` feature or no device can be opened.
    Cuda,
    /// The CUDA device for tall systems of at least [`CUDA_MIN_FLOPS`]
    /// ([`super::system_flops`]) when natgrad was built with `cuda` and a
    /// device opens; the CPU otherwise, saying why.
    #[default]
    Auto,
}

impl Device {
    /// The device called `name` (`cpu`, `cuda`, `auto`).
    pub fn parse(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            "auto" => Ok(Device::Auto),
            _ => Err(Error::UnknownName {
                kind: "device",
                name: name.into(),
                known: "cpu, cuda, auto".into(),
            }),
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Auto => "auto",
        }
    }
}

/// Below this many flops of a tall system's decomposition
/// ([`super::system_flops`]: QR `2SP² − 2P³/3` plus the SVD of the `P × P`
/// factor) `auto` keeps it on the CPU: laplace2d (5e7) stays, heat (2.9e8)
/// and everything larger goes. An estimate from timings of the device's
/// routines (docs/cuda.md) against the CPU profile, to be replaced by
/// whole-step measurements (`scripts/cuda-check.sh`).
pub const CUDA_MIN_FLOPS: f64 = 1e8;

/// A run's compute settings: `[compute]` in a run config, `--threads` and
/// `--device` on the command line. The optimisers get them when they are
/// built; nothing is set globally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Compute {
    /// Threads one dense kernel (product, SVD) may use ([`Par`]). Default 1;
    /// the command line's default is 2.
    pub threads: usize,
    /// Where the decompositions run. Default [`Device::Auto`].
    pub device: Device,
}

impl Default for Compute {
    fn default() -> Self {
        Compute {
            threads: 1,
            device: Device::Auto,
        }
    }
}

/// What a [`Compute`] setting amounts to on this machine.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceChoice {
    /// Every decomposition on the CPU; for `auto`, the reason no device is used.
    Cpu {
        /// Why `auto` fell back to the CPU (`None` for `cpu`).
        fallback: Option<String>,
    },
    /// Tall decompositions of at least `min_flops` on the named CUDA device.
    Cuda {
        /// The device's name.
        name: String,
        /// 0 for `cuda`, [`CUDA_MIN_FLOPS`] for `auto`.
        min_flops: f64,
    },
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Cpu { fallback: None } => write!(f, "cpu"),
            DeviceChoice::Cpu {
                fallback: Some(why),
            } => write!(f, "cpu ({why})"),
            DeviceChoice::Cuda { name, min_flops } if *min_flops > 0.0 => write!(
                f,
                "cuda ({name}) for systems of ≥ {:.1} GFlop, cpu below",
                min_flops / 1e9
            ),
            DeviceChoice::Cuda { name, .. } => write!(f, "cuda ({name})"),
        }
    }
}

impl Compute {
    /// The parallelism of one dense kernel.
    pub fn par(&self) -> Par {
        Par::threads(self.threads)
    }

    /// Check the fields: at least one thread.
    pub fn validate(&self) -> Result<()> {
        if self.threads == 0 {
            return Err(Error::config(
                "compute.threads",
                "must be at least 1 (threads of one dense kernel)",
            ));
        }
        Ok(())
    }

    /// What the setting amounts to here: `cuda` opens the device or fails
    /// with [`Error::Device`]; `auto` opens it if it can and otherwise
    /// falls back to the CPU, saying why.
    pub fn resolve(&self) -> Result<DeviceChoice> {
        self.validate()?;
        match self.device {
            Device::Cpu => Ok(DeviceChoice::Cpu { fallback: None }),
            Device::Cuda => Ok(DeviceChoice::Cuda {
                name: open_device()?,
                min_flops: 0.0,
            }),
            Device::Auto => Ok(match open_device() {
                Ok(name) => DeviceChoice::Cuda {
                    name,
                    min_flops: CUDA_MIN_FLOPS,
                },
                Err(e) => DeviceChoice::Cpu {
                    fallback: Some(e.to_string()),
                },
            }),
        }
    }
}

/// Open the CUDA device (once per process) and return its name.
#[cfg(feature = "cuda")]
fn open_device() -> Result<String> {
    super::cuda::Gpu::get().map(|g| g.name().to_string())
}

#[cfg(not(feature = "cuda"))]
fn open_device() -> Result<String> {
    Err(Error::Device(
        "natgrad was built without CUDA support (build with `--features cuda`)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for d in [Device::Cpu, Device::Cuda, Device::Auto] {
            assert_eq!(Device::parse(d.name()).unwrap(), d);
        }
        let e = Device::parse("gpu").unwrap_err().to_string();
        assert!(e.contains("gpu") && e.contains("cpu, cuda, auto"), "{e}");
        let e = Compute {
            threads: 0,
            ..Compute::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("compute.threads"), "{e}");
    }

    /// Without the feature (CI), `cuda` is a one-line error and `auto` the
    /// CPU with the reason.
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_cuda_errors_and_auto_falls_back() {
        let cuda = Compute {
            device: Device::Cuda,
            ..Compute::default()
        };
        let e = cuda.resolve().unwrap_err().to_string();
        assert!(e.contains("--features cuda") && !e.contains('\n'), "{e}");
        let auto = Compute::default().resolve().unwrap();
        assert!(
            matches!(auto, DeviceChoice::Cpu { fallback: Some(_) }),
            "{auto:?}"
        );
    }
}
