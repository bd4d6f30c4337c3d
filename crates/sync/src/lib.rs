//! The sync engine: how a till's data stays consistent with the ERP and how
//! every sale reaches the ERP exactly once, in order, whatever crashes in between.
//!
//! Owns seeding (snapshot pages with the cursor stored after each committed
//! page, so a killed seed resumes), catch-up by sequence (`changes?after=`, on
//! a timer and whenever an event shows a gap; `410` reseeds), the inbox (an
//! event's effect, its id and the dataset's sequence in one transaction, acked
//! only after the commit, poison dead-lettered, local trouble retried), and the
//! outbox send loop (creation order, batches of at most 500, accepted and
//! duplicate done, rejected parked without blocking the rest, network errors
//! and 5xx retried after `data_sync_retry_interval_minutes` with jitter or
//! `Retry-After`, 401 stops device calls).
//!
//! Ports declared here: [`DatasetApi`], [`OperationsApi`] (implemented by
//! `spacepos-erp-http`), [`LocalStore`], [`Outbox`] (implemented by
//! `spacepos-sqlite`), [`EventSubscriber`], [`EventPublisher`] (implemented by
//! `spacepos-amqp`).

mod bus_event;
mod inbox;
mod model;
mod ports;
mod seed;
mod send;

pub use bus_event::{BusEvent, BusEventHandler, EventDecoder, HandleError, Undecodable};
pub use inbox::{BATCH, BatchReport, Inbox, InboxProgress, InboxStats, LINGER};
pub use model::{
    Change, ChangesPage, Checkpoint, DatasetEvent, DatasetInfo, Destination, Entity, EventOutcome,
    NewOperation, OperationOutcome, OperationResult, OperationState, OutboxStats, QueuedOperation,
    SnapshotPage, SnapshotProgress,
};
pub use ports::{
    BusError, DatasetApi, DatasetApiError, Delivery, DeliveryTag, EventPublisher, EventSubscriber,
    LocalStore, MAX_BATCH, OperationsApi, Outbox, OutgoingEvent, SnapshotStep, StoreError,
};

pub use seed::{CHANGES_PAGE, DatasetSync, SNAPSHOT_PAGE, SeedProgress, Seeder, SyncError};
pub use send::{DeviceGate, DrainReport, SendTimers, Sender, jittered};

#[cfg(any(test, feature = "mocks"))]
pub use bus_event::{MockBusEventHandler, MockEventDecoder};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{
    MockDatasetApi, MockEventPublisher, MockEventSubscriber, MockLocalStore, MockOperationsApi,
    MockOutbox,
};
