//! The strategist's forecaster in the distributed mode (docs/architecture.md, "How the team
//! decides"): the coordinator retrains the ensemble on the learning schedule (`--retrain`) and
//! stores each version in the `models` table; a strategist assistant with `--db` polls that table
//! and forecasts with the newest version while it beat its baseline on held-out candles
//! (`RetrainReport::in_use`), and without a model otherwise.

use crate::ml::{Ensemble, MlError};
use crate::roles::strategist::{Forecast, Forecaster};
use crate::store::{Store, StoreError};
use protocol::messages::MarketSnapshot;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The name the retraining stores the strategist's ensemble under.
pub const MODEL_NAME: &str = "ensemble";

/// Why a stored model could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoredModelError {
    #[error(transparent)]
    /// The store could not be read.
    Store(#[from] StoreError),
    #[error(transparent)]
    /// The stored bytes are not a model.
    Model(#[from] MlError),
}

/// The newest usable stored model, swapped in as the coordinator stores new versions.
#[derive(Default)]
pub struct StoredForecaster {
    current: RwLock<Option<(i64, Arc<Ensemble>)>>,
    /// The newest version seen, used or not.
    seen: RwLock<Option<i64>>,
}

impl StoredForecaster {
    /// No model until the first [`refresh`](Self::refresh) finds one.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The version forecasting now, if any.
    pub fn version(&self) -> Option<i64> {
        self.current
            .read()
            .expect("model lock")
            .as_ref()
            .map(|(v, _)| *v)
    }

    /// Reads the newest model of `strategy`: it forecasts from now on if its evaluation says it
    /// is in use, else no model does. Returns the version in use.
    pub async fn refresh(
        &self,
        store: &Store,
        strategy: &str,
    ) -> Result<Option<i64>, StoredModelError> {
        let Some(stored) = store.latest_model(strategy, MODEL_NAME).await? else {
            return Ok(None);
        };
        if *self.seen.read().expect("model lock") == Some(stored.version) {
            return Ok(self.version());
        }
        let in_use = serde_json::from_str::<serde_json::Value>(&stored.metrics)
            .ok()
            .and_then(|m| m.get("inUse").and_then(|v| v.as_bool()))
            .unwrap_or(false);
        let what = format!("models: {strategy}/{MODEL_NAME} v{}", stored.version);
        let model = if in_use {
            Some((
                stored.version,
                Arc::new(Ensemble::from_bytes(&stored.model, &what)?),
            ))
        } else {
            None
        };
        tracing::info!(
            version = stored.version,
            in_use,
            "the strategist's stored model changed"
        );
        *self.current.write().expect("model lock") = model;
        *self.seen.write().expect("model lock") = Some(stored.version);
        Ok(self.version())
    }

    /// Refreshes every `every` until the process stops; a failed read is logged and the model in
    /// use kept.
    pub async fn poll(self: Arc<Self>, store: Store, strategy: String, every: Duration) {
        loop {
            if let Err(error) = self.refresh(&store, &strategy).await {
                tracing::warn!(%error, "cannot read the strategist's stored model; keeping the one in use");
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {},
                () = crate::shutdown::stop_requested() => return,
            }
        }
    }
}

impl Forecaster for StoredForecaster {
    fn forecast(&self, snapshot: &MarketSnapshot) -> Option<Forecast> {
        let model = self.current.read().expect("model lock").as_ref()?.1.clone();
        model.forecast(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::Candle;
    use crate::ml::testing::{candles, snapshot};
    use crate::ml::{Retrainer, Training};

    /// Stores version `version` of a model trained on `all`, marked in use or not.
    async fn store_model(store: &Store, all: &[Candle], version: i64, in_use: bool) {
        let training = Training {
            trees: 8,
            max_depth: 5,
            seed: 7,
        };
        let retrainer = Retrainer::new(None, training, 12, 1200);
        retrainer.retrain(&[all]).unwrap();
        let (_, model) = retrainer.current().unwrap();
        let metrics = serde_json::json!({"version": version, "inUse": in_use}).to_string();
        store
            .save_model("s", MODEL_NAME, version, 0, &metrics, &model.to_bytes())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn forecasts_with_the_newest_model_only_while_it_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = Store::connect(&url).await.unwrap();
        let all = candles(1400);
        let at = snapshot(&all);
        let forecaster = StoredForecaster::new();
        assert_eq!(forecaster.refresh(&store, "s").await.unwrap(), None);
        assert!(forecaster.forecast(&at).is_none(), "no model stored yet");

        store_model(&store, &all[..1300], 1, true).await;
        assert_eq!(forecaster.refresh(&store, "s").await.unwrap(), Some(1));
        let p = forecaster
            .forecast(&at)
            .expect("version 1 forecasts")
            .probability_up;
        assert!((0.0..=1.0).contains(&p));

        // a newer version that lost to its baseline: no model forecasts
        store_model(&store, &all[..1350], 2, false).await;
        assert_eq!(forecaster.refresh(&store, "s").await.unwrap(), None);
        assert!(forecaster.forecast(&at).is_none());
    }
}
