//! The Tauri commands: each translates between the UI's DTOs
//! (`UI-CONTRACT.md`) and the [`Backend`], nothing more.

use tauri::State;

use crate::backend::{Backend, InstallDto, SnoozeDto};
use crate::view::{ErrorDto, View};

#[tauri::command]
pub async fn view(backend: State<'_, Backend>) -> Result<View, ErrorDto> {
    Ok(backend.view().await?)
}

#[tauri::command]
pub async fn onboard(
    backend: State<'_, Backend>,
    code: String,
    api: Option<String>,
) -> Result<View, ErrorDto> {
    backend.onboard(&code, api.as_deref()).await
}

#[tauri::command]
pub async fn retry_operation(backend: State<'_, Backend>, id: String) -> Result<View, ErrorDto> {
    backend.retry(&id).await
}

#[tauri::command]
pub async fn snooze_update(
    backend: State<'_, Backend>,
    component: String,
) -> Result<SnoozeDto, ErrorDto> {
    backend.snooze(&component).await
}

#[tauri::command]
pub async fn install_update(
    backend: State<'_, Backend>,
    component: String,
) -> Result<InstallDto, ErrorDto> {
    backend.install(&component).await
}

#[tauri::command]
pub async fn staff_login(
    backend: State<'_, Backend>,
    staff: String,
    pin: String,
) -> Result<View, ErrorDto> {
    backend.staff_login(&staff, pin).await
}

#[tauri::command]
pub async fn staff_logout(backend: State<'_, Backend>) -> Result<View, ErrorDto> {
    backend.staff_logout().await
}
