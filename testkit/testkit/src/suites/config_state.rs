//! Contract suite of [`ConfigStateStore`]; stamp it with
//! [`crate::config_state_suite!`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Value, json};
use spacepos_config::{ConfigStateError, ConfigStateStore, keys};

use super::{Guarded, Reopen};

/// Clause: "`get` of a key never `put` is `None`"; a new store has no keys.
pub async fn case_get_of_a_key_never_put_is_none(store: &dyn ConfigStateStore) {
    assert_eq!(store.get(keys::BUS).await.expect("get"), None);
    assert!(store.all().await.expect("all").is_empty());
}

/// Clause: "`put` then `get` returns the value" (any JSON value, as put).
pub async fn case_put_then_get_returns_the_value(store: &dyn ConfigStateStore) {
    let values = [
        (keys::REONBOARDING_NEEDED, json!(true)),
        (
            keys::LAST_SEND,
            json!({"at": "2026-11-24T09:00:00Z", "ok": false, "error": "HTTP 503 from erp.example.com"}),
        ),
        (
            keys::LAST_EVENT_APPLIED_AT,
            json!("2026-11-24T09:05:00.123456789Z"),
        ),
        ("custom.number", json!(1.5)),
        ("custom.null", Value::Null),
        ("custom.list", json!([1, "two", {"three": 3}])),
    ];
    for (key, value) in &values {
        store.put(key, value).await.expect("put");
    }
    for (key, value) in &values {
        assert_eq!(
            store.get(key).await.expect("get").as_ref(),
            Some(value),
            "{key}"
        );
    }
}

/// Clause: "a later `put` replaces it".
pub async fn case_a_later_put_replaces_the_value(store: &dyn ConfigStateStore) {
    store
        .put(keys::BUS, &json!({"connected": false, "error": "refused"}))
        .await
        .expect("put");
    store
        .put(keys::BUS, &json!({"connected": true, "error": null}))
        .await
        .expect("put again");
    assert_eq!(
        store.get(keys::BUS).await.expect("get"),
        Some(json!({"connected": true, "error": null}))
    );
    assert_eq!(store.all().await.expect("all").len(), 1);
}

/// Clause: "`all` lists every key" with its latest value.
pub async fn case_all_lists_every_key(store: &dyn ConfigStateStore) {
    store.put("b", &json!(2)).await.expect("put");
    store.put("a", &json!(1)).await.expect("put");
    store.put("b", &json!(3)).await.expect("put");
    let expected: BTreeMap<String, Value> =
        [("a".to_owned(), json!(1)), ("b".to_owned(), json!(3))].into();
    assert_eq!(store.all().await.expect("all"), expected);
}

/// Clause: these are "facts ... that every process may read": another instance
/// over the same storage sees what one put, and the other way round.
pub async fn case_every_instance_sees_the_same_facts(
    store: &dyn ConfigStateStore,
    reopen: &dyn Reopen<dyn ConfigStateStore>,
) {
    store
        .put(keys::REONBOARDING_NEEDED, &json!(true))
        .await
        .expect("put");
    let other = reopen.reopen().await;
    assert_eq!(
        other.get(keys::REONBOARDING_NEEDED).await.expect("get"),
        Some(json!(true))
    );
    other
        .put(keys::REONBOARDING_NEEDED, &json!(false))
        .await
        .expect("put from the other");
    assert_eq!(
        store.get(keys::REONBOARDING_NEEDED).await.expect("get"),
        Some(json!(false))
    );
}

#[async_trait]
impl<S: ConfigStateStore, G: Send + Sync + 'static> ConfigStateStore for Guarded<S, G> {
    async fn get(&self, key: &str) -> Result<Option<Value>, ConfigStateError> {
        self.store.get(key).await
    }

    async fn put(&self, key: &str, value: &Value) -> Result<(), ConfigStateError> {
        self.store.put(key, value).await
    }

    async fn all(&self) -> Result<BTreeMap<String, Value>, ConfigStateError> {
        self.store.all().await
    }
}

/// Stamp one `#[tokio::test]` per case of the [`ConfigStateStore`] suite.
///
/// `$factory` evaluates to a future of a fresh store, evaluated once per test;
/// it must also implement [`Reopen<dyn ConfigStateStore>`](Reopen) (fakes do;
/// wrap an adapter in a [`Guarded`] whose guard does).
#[macro_export]
macro_rules! config_state_suite {
    ($factory:expr) => {
        $crate::config_state_suite!(@cases $factory;
            case_get_of_a_key_never_put_is_none,
            case_put_then_get_returns_the_value,
            case_a_later_put_replaces_the_value,
            case_all_lists_every_key;
            reopen:
            case_every_instance_sees_the_same_facts,
        );
    };
    (@cases $factory:expr; $($case:ident),+ ; reopen: $($reopen_case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $factory.await;
                $crate::suites::config_state::$case(&store).await;
            }
        )+
        $(
            #[tokio::test]
            async fn $reopen_case() {
                let store = $factory.await;
                $crate::suites::config_state::$reopen_case(&store, &store).await;
            }
        )+
    };
}
