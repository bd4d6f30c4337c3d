use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use spacepos_auth::{AuthApi, AuthApiError, JwkSet, TokenGrant};
use spacepos_core::Secret;
use spacepos_erp_wire::rest;

use crate::ErpHttpClient;
use crate::client::Failure;

/// The error code the ERP uses for bad device credentials on any endpoint.
const INVALID_CLIENT: &str = "invalid_client";

fn grant(t: rest::TokenResponse) -> TokenGrant {
    TokenGrant {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        expires_in: Duration::from_secs(t.expires_in),
        store_staff_id: t.store_staff_id,
    }
}

impl ErpHttpClient {
    /// A 401 on a session endpoint is about the staff member, unless the ERP says
    /// the device itself is refused (`invalid_client`): then re-onboarding is needed.
    fn session_failure(&self, f: Failure, user_error: AuthApiError) -> AuthApiError {
        if f.status.as_u16() == 401 && f.code() != Some(INVALID_CLIENT) {
            user_error
        } else {
            AuthApiError::Remote(self.remote_error(f))
        }
    }
}

#[async_trait]
impl AuthApi for ErpHttpClient {
    async fn login(&self, staff_code: &str, pin: &Secret) -> Result<TokenGrant, AuthApiError> {
        let body = rest::LoginRequest {
            staff_code: staff_code.to_owned(),
            pin: pin.clone(),
        };
        let req = self.device(Method::POST, "api/pos/auth/login")?.json(&body);
        match self.send(req).await? {
            Ok(r) => Ok(grant(self.json(r).await?)),
            Err(f) => Err(self.session_failure(f, AuthApiError::InvalidCredentials)),
        }
    }

    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenGrant, AuthApiError> {
        let body = rest::RefreshRequest {
            refresh_token: refresh_token.clone(),
        };
        let req = self
            .device(Method::POST, "api/pos/auth/refresh")?
            .json(&body);
        match self.send(req).await? {
            Ok(r) => Ok(grant(self.json(r).await?)),
            Err(f) => Err(self.session_failure(f, AuthApiError::SessionEnded)),
        }
    }

    async fn jwks(&self) -> Result<JwkSet, AuthApiError> {
        let response = self
            .send_ok(self.device(Method::GET, "api/pos/auth/jwks")?)
            .await?;
        Ok(self.json(response).await?)
    }
}
