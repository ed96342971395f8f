//! A trained model read back from its file, with the output transform of
//! the problem it was trained on.

use std::path::Path;

use super::catalogue;
use crate::error::{Error, Result};
use crate::model::{Evaluation, Mlp, OutputTransform, SavedModel, evaluate};

/// A network, its parameters and, for hard-constrained catalogue problems,
/// the output transform `u = g + ψ·N_θ`: what `natgrad eval` and the Python
/// package's `Model` evaluate.
///
/// A model file holds the network `N_θ` and the name of its problem; the
/// transform is rebuilt from the catalogue (problems declared in a
/// configuration file have none).
#[derive(Clone, Debug)]
pub struct TrainedModel {
    /// The network.
    pub mlp: Mlp,
    /// Its parameters.
    pub theta: Vec<f64>,
    /// The output transform of its problem, if any.
    pub transform: Option<OutputTransform>,
    /// The problem named in the file.
    pub problem: Option<String>,
}

impl TrainedModel {
    /// Read and check a `model.json` (or `best_model.json`, `model-<iter>.json`).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let saved: SavedModel = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.display().to_string(),
            reason: format!("not a natgrad model: {e}"),
        })?;
        let problem = saved.problem.clone();
        let (mlp, theta) = saved.into_parts()?;
        let transform = match &problem {
            Some(name) if catalogue::contains(name) => catalogue::build(name)?.transform,
            _ => None,
        };
        Ok(TrainedModel {
            mlp,
            theta,
            transform,
            problem,
        })
    }

    /// Number of inputs (the dimension of the points).
    pub fn input_dim(&self) -> usize {
        self.mlp.input_dim()
    }

    /// `u` (and with `derivatives` ∇u and Δu) at `points`, row-major
    /// ([`crate::model::evaluate`]).
    pub fn evaluate(&self, points: &[f64], derivatives: bool) -> Result<Evaluation> {
        evaluate(
            &self.mlp,
            &self.theta,
            self.transform.as_ref(),
            points,
            derivatives,
        )
    }
}
