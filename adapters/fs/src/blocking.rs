//! Running blocking file I/O off the async runtime.

use std::io;

/// Run `f` on tokio's blocking pool, carrying the caller's tracing dispatcher
/// and span along (so that its log lines reach the same subscriber, including
/// a test's). A panic in `f` is resumed in the caller; a task cancelled by a
/// shutting-down runtime becomes an error.
pub(crate) async fn run<T, F>(f: F) -> Result<T, io::Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // Carry a thread-scoped subscriber along, but never the no-op one: scoping
    // that on the blocking thread would hide the events from the global
    // subscriber (and cache "not interested" for their call sites).
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let dispatch = (!dispatch.is::<tracing::subscriber::NoSubscriber>()).then_some(dispatch);
    let span = tracing::Span::current();
    let task = tokio::task::spawn_blocking(move || match dispatch {
        Some(dispatch) => tracing::dispatcher::with_default(&dispatch, || span.in_scope(f)),
        None => span.in_scope(f),
    });
    match task.await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(io::Error::other(
            "the file operation was cancelled because the runtime is shutting down",
        )),
    }
}
