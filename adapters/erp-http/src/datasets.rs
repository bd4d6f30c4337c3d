use async_trait::async_trait;
use reqwest::Method;
use spacepos_core::RemoteError;
use spacepos_erp_wire::rest;
use spacepos_sync::{
    Change, ChangesPage, DatasetApi, DatasetApiError, DatasetInfo, Entity, OperationOutcome,
    OperationResult, OperationsApi, QueuedOperation, SnapshotPage,
};

use crate::ErpHttpClient;
use crate::client::{Failure, LONG_TRANSFER_LIMIT};

impl ErpHttpClient {
    fn dataset_error(&self, dataset: &str, f: Failure, after: Option<u64>) -> DatasetApiError {
        match (f.status.as_u16(), f.code()) {
            (410, _) => DatasetApiError::SequenceExpired {
                dataset: dataset.to_owned(),
                after: after.unwrap_or(0),
            },
            (404, _) => DatasetApiError::UnknownDataset {
                dataset: dataset.to_owned(),
            },
            (400 | 422, Some("invalid_cursor")) => DatasetApiError::CursorRejected {
                dataset: dataset.to_owned(),
            },
            _ => DatasetApiError::Remote(self.remote_error(f)),
        }
    }
}

fn entity(id: String, version: u64, deleted: bool, data: serde_json::Value) -> Entity {
    Entity {
        id,
        version,
        deleted,
        data,
    }
}

#[async_trait]
impl DatasetApi for ErpHttpClient {
    async fn datasets(&self) -> Result<Vec<DatasetInfo>, DatasetApiError> {
        let response = self
            .send_ok(self.device_to(Method::GET, &["api", "pos", "datasets"])?)
            .await?;
        let list: rest::DatasetList = self.json(response).await?;
        Ok(list
            .datasets
            .into_iter()
            .map(|d| DatasetInfo {
                name: d.name,
                last_sequence: d.last_sequence,
            })
            .collect())
    }

    async fn snapshot(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SnapshotPage, DatasetApiError> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(c) = cursor {
            query.push(("cursor", c));
        }
        let request = self
            .device_to(
                Method::GET,
                &["api", "pos", "datasets", dataset, "snapshot"],
            )?
            .query(&query)
            .timeout(LONG_TRANSFER_LIMIT);
        let response = match self.send(request).await? {
            Ok(r) => r,
            Err(f) => return Err(self.dataset_error(dataset, f, None)),
        };
        let page: rest::SnapshotPage = self.json(response).await?;
        Ok(SnapshotPage {
            dataset: page.dataset,
            as_of_sequence: page.as_of_sequence,
            items: page
                .items
                .into_iter()
                .map(|i| entity(i.id, i.version, i.deleted, i.data))
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn changes(
        &self,
        dataset: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangesPage, DatasetApiError> {
        let request = self
            .device_to(Method::GET, &["api", "pos", "datasets", dataset, "changes"])?
            .query(&[("after", after.to_string()), ("limit", limit.to_string())])
            .timeout(LONG_TRANSFER_LIMIT);
        let response = match self.send(request).await? {
            Ok(r) => r,
            Err(f) => return Err(self.dataset_error(dataset, f, Some(after))),
        };
        let page: rest::ChangesPage = self.json(response).await?;
        Ok(ChangesPage {
            dataset: page.dataset,
            items: page
                .items
                .into_iter()
                .map(|i| Change {
                    sequence: i.sequence,
                    entity: entity(i.id, i.version, i.deleted, i.data),
                })
                .collect(),
            last_sequence: page.last_sequence,
            has_more: page.has_more,
        })
    }
}

#[async_trait]
impl OperationsApi for ErpHttpClient {
    async fn submit(&self, batch: &[QueuedOperation]) -> Result<Vec<OperationResult>, RemoteError> {
        let body = rest::OperationsRequest {
            operations: batch
                .iter()
                .map(|op| rest::Operation {
                    id: op.id,
                    kind: op.kind.clone(),
                    occurred_at: op.occurred_at,
                    store_staff_id: op.store_staff_id.clone(),
                    payload: op.payload.clone(),
                })
                .collect(),
        };
        let request = self
            .device_to(Method::POST, &["api", "pos", "operations"])?
            .json(&body);
        let response = self.send_ok(request).await?;
        let answer: rest::OperationsResponse = self.json(response).await?;
        Ok(answer
            .results
            .into_iter()
            .map(|r| OperationResult {
                id: r.id,
                outcome: match r.status {
                    rest::OperationStatus::Accepted => OperationOutcome::Accepted,
                    rest::OperationStatus::Duplicate => OperationOutcome::Duplicate,
                    rest::OperationStatus::Rejected => OperationOutcome::Rejected {
                        error: r
                            .error
                            .unwrap_or_else(|| "rejected without a reason".to_owned()),
                    },
                },
            })
            .collect())
    }
}
