//! Checkpoints: everything needed to continue a run exactly, written
//! atomically (temporary file, fsync, rename) so that a crash or a kill
//! during the write leaves the previous checkpoint intact.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format` field of a checkpoint file.
pub const CHECKPOINT_FORMAT: &str = "natgrad-checkpoint";
/// The current checkpoint version.
pub const CHECKPOINT_VERSION: u32 = 2;

/// A run's state after some iteration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The run's specification (none for a bare [`super::Trainer`] run).
    pub run: Option<super::RunSpec>,
    /// The trainer's state: iteration, clock, loss, θ, stall watch, best iterate.
    pub state: super::TrainingState,
    /// Optimiser name.
    pub optimizer: String,
    /// Its [`crate::optim::Optimizer::state`].
    pub optimizer_state: crate::optim::OptimizerState,
    /// [`crate::residual::LeastSquares::points_digest`] of the training
    /// points the run started from (absent in checkpoints written before it
    /// was recorded): resuming onto other points is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<String>,
    /// The resampled block's points and random stream, when resampling is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<super::ResampleState>,
}

impl Checkpoint {
    /// Write to `path` atomically: `path.tmp`, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let text = serde_json::to_string(self).expect("checkpoint serialises");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| Error::io(path, e))
    }

    /// Read and check a checkpoint: format, version, finite θ and loss.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |reason: String| Error::Parse {
            path: path.display().to_string(),
            reason,
        };
        // Format and version first, so that a checkpoint of another version
        // is named as such rather than as a field that does not parse.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let h: Header =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a checkpoint: {e}")))?;
        if h.format != CHECKPOINT_FORMAT {
            return Err(bad(format!(
                "format `{}`, expected `{CHECKPOINT_FORMAT}`",
                h.format
            )));
        }
        if h.version != CHECKPOINT_VERSION {
            return Err(bad(format!(
                "version {}, this natgrad reads version {CHECKPOINT_VERSION}",
                h.version
            )));
        }
        let mut de = serde_json::Deserializer::from_str(&text);
        let c: Checkpoint = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| bad(format!("{}: {}", e.path(), e.inner())))?;
        let st = &c.state;
        if !st.loss.is_finite() || st.theta.iter().any(|v| !v.is_finite()) {
            return Err(bad("non-finite loss or parameters".into()));
        }
        if !(st.time_s.is_finite() && st.time_s >= 0.0 && st.last_eval_s.is_finite()) {
            return Err(bad("bad times".into()));
        }
        Ok(c)
    }
}

/// Keep the header and the rows of a CSV file whose first column (the
/// iteration) is at most `iter` — the rows a resumed run continues from.
/// A missing file is left missing.
pub fn truncate_csv_after(path: &Path, iter: usize) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = String::with_capacity(text.len());
    for (k, line) in text.lines().enumerate() {
        let keep = k == 0
            || line
                .split(',')
                .next()
                .and_then(|f| f.parse::<usize>().ok())
                .is_some_and(|i| i <= iter);
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            run: Some(super::super::RunSpec::defaults("heat").unwrap()),
            state: super::super::TrainingState {
                iter: 7,
                time_s: 1.5,
                last_eval_s: 1.25,
                loss: 0.1 + 0.2,
                theta: vec![1.0 / 3.0, -2e-300, 5.0],
                stall: super::super::StallWatch {
                    best: 0.1 + 0.2,
                    since: 3,
                },
                best: Some(super::super::BestIterate {
                    iter: 2,
                    loss: 0.25,
                    heldout_loss: 0.5,
                    l2_abs: Some(1e-3),
                    l2_rel: None,
                    linf: Some(2e-3),
                    theta: vec![0.5, 1.0 / 7.0, 2.0],
                }),
                initial_heldout: Some(2.0e4 / 3.0),
                restarts: vec![5],
            },
            optimizer: "adam".into(),
            optimizer_state: crate::optim::OptimizerState::None,
            points: Some("4 points, 0123456789abcdef".into()),
            sampling: Some(super::super::ResampleState {
                points: vec![0.1, 0.7, 1.0 / 7.0, 0.3],
                word_pos: (1u128 << 70) + 5,
                redraws: 2,
            }),
        }
    }

    /// Round trip bit for bit; corrupt, truncated and wrong-version files are clear errors.
    #[test]
    fn round_trip_and_bad_files() {
        let dir = std::env::temp_dir().join(format!("natgrad-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("checkpoint.json");
        let c = sample();
        c.save(&p).unwrap();
        // Every field serialises exactly (floats round-trip), so equal text is equal values.
        let back = Checkpoint::load(&p).unwrap();
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&c).unwrap()
        );
        assert_eq!(back.state.theta[1].to_bits(), c.state.theta[1].to_bits());
        assert!(!dir.join("checkpoint.json.tmp").exists());
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, &text[..text.len() / 2]).unwrap();
        let e = Checkpoint::load(&p).unwrap_err().to_string();
        assert!(e.contains("not a checkpoint"), "{e}");
        // Another version is named as such even when its fields differ.
        let mut v = sample();
        v.version = 99;
        v.save(&p).unwrap();
        let other = std::fs::read_to_string(&p).unwrap().replace(
            "\"optimizer_state\":\"none\"",
            "\"optimizer_state\":{\"t\":7}",
        );
        assert!(other.contains("{\"t\":7}"));
        std::fs::write(&p, other).unwrap();
        assert!(
            Checkpoint::load(&p)
                .unwrap_err()
                .to_string()
                .contains("version 99")
        );
        let mut v = sample();
        v.state.theta[0] = f64::NAN;
        std::fs::write(
            &p,
            serde_json::to_string(&v).unwrap().replace("NaN", "null"),
        )
        .unwrap();
        assert!(Checkpoint::load(&p).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn truncation_keeps_rows_up_to_the_iteration() {
        let dir = std::env::temp_dir().join(format!("natgrad-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("history.csv");
        std::fs::write(&p, "iter,loss\n0,1\n1,2\n2,3\n3,4\n").unwrap();
        truncate_csv_after(&p, 1).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "iter,loss\n0,1\n1,2\n"
        );
        truncate_csv_after(&dir.join("missing.csv"), 1).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
