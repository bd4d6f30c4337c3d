use async_trait::async_trait;
use reqwest::Method;
use spacepos_auth::{OnboardError, Onboarded, OnboardingApi, OnboardingRequest, TerminalSettings};
use spacepos_config::CompanyInformation;
use spacepos_core::{DeviceCredentials, RedactedUrl, RemoteError};
use spacepos_erp_wire::rest;
use url::Url;

use crate::ErpHttpClient;

pub(crate) fn company(c: rest::CompanyInformation) -> CompanyInformation {
    CompanyInformation {
        name: c.name,
        vat_number: c.vat_number,
        address: c.address,
        currency: c.currency,
        time_zone: c.time_zone,
    }
}

impl ErpHttpClient {
    fn parse_endpoint(
        &self,
        field: &str,
        text: Option<String>,
    ) -> Result<Option<Url>, RemoteError> {
        text.filter(|t| !t.trim().is_empty())
            .map(|t| {
                Url::parse(&t).map_err(|e| RemoteError::Protocol {
                    host: self.host().to_owned(),
                    detail: format!("{field} is not a URL ({e})"),
                })
            })
            .transpose()
    }
}

#[async_trait]
impl OnboardingApi for ErpHttpClient {
    async fn onboard(&self, request: &OnboardingRequest) -> Result<Onboarded, OnboardError> {
        let body = rest::OnboardRequest {
            onboarding_code: request.code.clone(),
            hostname: request.client.hostname.clone(),
            os: request.client.os(),
            arch: request.client.arch.clone(),
            app_version: request.client.version.clone(),
            components: request
                .components
                .iter()
                .map(|c| c.rest_id().to_owned())
                .collect(),
        };
        let req = self
            .anonymous(Method::POST, "api/pos/terminals/onboard")
            .json(&body);
        let response = match self.send(req).await? {
            Ok(r) => r,
            Err(f) => {
                let host = self.host().to_owned();
                return Err(match (f.status.as_u16(), f.code()) {
                    (404, _) => OnboardError::UnknownCode { host },
                    (409, _) => OnboardError::CodeUsed { host },
                    (400 | 422, _) => OnboardError::Invalid {
                        host,
                        message: f.message(),
                    },
                    _ => OnboardError::Remote(self.remote_error(f)),
                });
            }
        };
        let r: rest::OnboardResponse = self.json(response).await?;
        let amqp_url = match r.amqp_url.filter(|t| !t.trim().is_empty()) {
            Some(t) => Some(RedactedUrl::parse(&t).map_err(|e| RemoteError::Protocol {
                host: self.host().to_owned(),
                detail: format!("amqpUrl is not a URL ({e})"),
            })?),
            None => None,
        };
        Ok(Onboarded {
            credentials: DeviceCredentials {
                client_id: r.client_id,
                client_secret: r.client_secret,
            },
            store_number: r.store_number,
            terminal_number: r.terminal_number,
            api_endpoint: self.parse_endpoint("apiEndpoint", r.api_endpoint)?,
            amqp_url,
            report_presence: r.report_presence,
            presence_interval_seconds: r.presence_interval_seconds,
            company_information: r.company_information.map(company),
        })
    }

    async fn terminal_settings(&self) -> Result<TerminalSettings, RemoteError> {
        let response = self
            .send_ok(self.device(Method::GET, "api/pos/terminals/me")?)
            .await?;
        let me: rest::TerminalMe = self.json(response).await?;
        Ok(TerminalSettings {
            store_number: me.store_number,
            terminal_number: me.terminal_number,
            report_presence: me.report_presence,
            presence_interval_seconds: me.presence_interval_seconds,
            company_information: me.company_information.map(company),
        })
    }
}
