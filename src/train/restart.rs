//! Restarts: a run that has not converged after a set number of iterations
//! starts over from another initialisation.
//!
//! Some natural-gradient runs reach their accurate basin within a few
//! hundred iterations of a plateau or not at all; which initialisations do
//! so depends on the seed and on the initialisation's scale. A restart gives
//! a run a second (third, …) try within the same budget: after `after`
//! iterations of a try whose loss is still above `above`, θ is drawn afresh
//! from the next initialisation in `inits` (with the run's seed) and the
//! optimiser starts over from its initial state. The training points, the
//! budget's clock and iteration count, and the best iterate by held-out loss
//! carry on across tries.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Init;
use crate::optim::OptimizerState;

/// When and from what a run restarts (off by default: no `inits`).
///
/// In a run configuration:
///
/// ```toml
/// [restarts]
/// after = 2000                              # iterations of a try before the check
/// above = 1e-14                             # restart only while the loss is above this
/// inits = [{ kind = "normal", std = 0.3 }]  # the initialisations of tries 2, 3, …
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Restarts {
    /// Iterations of a try after which its loss is checked (default 2000).
    /// A try that stalls ([`super::Budget::stall_iters`]) earlier is checked
    /// then.
    pub after: usize,
    /// A try whose loss is above this at the check restarts (default 1e-14:
    /// far below any loss of a run that has not found its accurate basin,
    /// far above the losses of one that has).
    pub above: f64,
    /// The initialisations of the second, third, … tries, each drawn with
    /// the run's seed (default none: no restarts). The last try runs to the
    /// end of the budget.
    pub inits: Vec<Init>,
}

impl Default for Restarts {
    fn default() -> Self {
        Restarts {
            after: 2000,
            above: 1e-14,
            inits: Vec::new(),
        }
    }
}

impl Restarts {
    /// True when the run never restarts (no `inits`).
    pub fn is_off(&self) -> bool {
        self.inits.is_empty()
    }

    /// Check every field; `first` is the initialisation of the first try.
    /// A try with the same initialisation as an earlier one would repeat it
    /// (the same seed gives the same θ), so that is an error too.
    pub fn validate(&self, first: Init) -> Result<()> {
        if self.is_off() {
            return Ok(());
        }
        if self.after == 0 {
            return Err(Error::config("restarts.after", "must be at least 1"));
        }
        if !(self.above.is_finite() && self.above >= 0.0) {
            return Err(Error::config(
                "restarts.above",
                format!("must be finite and ≥ 0, got {}", self.above),
            ));
        }
        for (k, init) in self.inits.iter().enumerate() {
            let field = format!("restarts.inits[{k}]");
            init.validate(&field)?;
            let earlier = std::iter::once(&first).chain(&self.inits[..k]);
            if let Some(j) = earlier.clone().position(|e| e == init) {
                let which = match j {
                    0 => "the first try's (the model's)".to_string(),
                    j => format!("restarts.inits[{}]", j - 1),
                };
                return Err(Error::config(
                    field,
                    format!(
                        "the same initialisation as {which}: with the run's seed it would repeat \
                         that try; choose another, or turn restarts off (`inits = []`, `--no-restarts`)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// What the trainer needs to restart a run ([`super::Trainer::restarts`]):
/// the settings and, ready drawn, the parameters of every later try.
#[derive(Clone, Debug)]
pub struct RestartPlan {
    /// Iterations of a try before its check.
    pub after: usize,
    /// Restart a try whose loss is above this at the check.
    pub above: f64,
    /// θ of the second, third, … tries.
    pub starts: Vec<Vec<f64>>,
    /// The optimiser's state before its first step, restored at each restart.
    pub fresh: OptimizerState,
}
