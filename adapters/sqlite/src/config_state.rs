//! [`ConfigStateStore`] on the `config_state` table.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use spacepos_config::{ConfigStateError, ConfigStateStore};

use crate::codec;
use crate::error::Fail;
use crate::store::SqliteStore;

impl SqliteStore {
    async fn try_config_get(&self, key: &str) -> Result<Option<Value>, Fail> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM config_state WHERE key = ?")
            .bind(key)
            .fetch_optional(self.reader())
            .await?;
        row.map(|(v,)| codec::parse_json("config_state.value", &v))
            .transpose()
    }

    async fn try_config_put(&self, key: &str, value: &str) -> Result<(), Fail> {
        let mut tx = self.begin_relaxed().await?;
        sqlx::query(
            "INSERT INTO config_state (key, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(codec::time(Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn try_config_all(&self) -> Result<BTreeMap<String, Value>, Fail> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM config_state ORDER BY key")
                .fetch_all(self.reader())
                .await?;
        rows.into_iter()
            .map(|(k, v)| Ok((k, codec::parse_json("config_state.value", &v)?)))
            .collect()
    }
}

/// Map a failure to the port's error; contention was already waited out.
fn config_error(
    store: &SqliteStore,
    action: &str,
    retry: &crate::store::Retry,
    fail: Fail,
) -> ConfigStateError {
    match fail.into_sqlite(store.path(), action) {
        Ok(e) => e.with_waited(retry.waited()).into(),
        Err(other) => ConfigStateError {
            location: store.path().display().to_string(),
            source: Box::new(other),
        },
    }
}

macro_rules! config_retry {
    ($store:expr, $action:expr, $body:expr) => {{
        let store: &SqliteStore = $store;
        let mut retry = store.retry();
        loop {
            let fail = match $body.await {
                Ok(value) => break Ok(value),
                Err(fail) => fail,
            };
            if !(fail.is_busy() && retry.wait().await) {
                break Err(config_error(store, &*$action, &retry, fail));
            }
        }
    }};
}

#[async_trait]
impl ConfigStateStore for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<Value>, ConfigStateError> {
        config_retry!(
            self,
            format!("read config_state {key:?}"),
            self.try_config_get(key)
        )
    }

    async fn put(&self, key: &str, value: &Value) -> Result<(), ConfigStateError> {
        let text = codec::json(value);
        config_retry!(
            self,
            format!("write config_state {key:?}"),
            self.try_config_put(key, &text)
        )
    }

    async fn all(&self) -> Result<BTreeMap<String, Value>, ConfigStateError> {
        config_retry!(self, "read config_state", self.try_config_all())
    }
}
