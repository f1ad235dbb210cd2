//! `ScreenService`: pair, revoke and list the office warning screens. The
//! screens themselves are served over HTTPS by [`crate::screen`].

use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    domain::ScreenRecord,
    pb::{self, screen_service_server::ScreenService},
    policy::Action,
};

/// The `ScreenService` implementation.
#[derive(Clone)]
pub struct ScreenApi(pub Api);

#[tonic::async_trait]
impl ScreenService for ScreenApi {
    async fn pair_screen(
        &self,
        req: Request<pb::PairScreenRequest>,
    ) -> Result<Response<pb::PairScreenResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::PairScreen).await?;
        let cmd = api
            .command(&caller, Action::PairScreen, req.get_ref())
            .await?;
        let result = api.broker.pair_screen(&caller, cmd).await;
        let ((r, code), receipt) = api.finish(&caller, Action::PairScreen, result).await?;
        let now = api.broker.now();
        Ok(Response::new(pb::PairScreenResponse {
            screen: Some(screen_to_pb(&r, now)),
            code,
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }

    async fn revoke_screen(
        &self,
        req: Request<pb::RevokeScreenRequest>,
    ) -> Result<Response<pb::ScreenResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::RevokeScreen).await?;
        let cmd = api
            .command(&caller, Action::RevokeScreen, req.get_ref())
            .await?;
        let result = api.broker.revoke_screen(&caller, cmd).await;
        let (r, receipt) = api.finish(&caller, Action::RevokeScreen, result).await?;
        Ok(Response::new(pb::ScreenResponse {
            screen: Some(screen_to_pb(&r, api.broker.now())),
            receipt: convert::receipt_to_pb(Some(receipt)),
        }))
    }

    async fn list_screens(
        &self,
        req: Request<pb::ListScreensRequest>,
    ) -> Result<Response<pb::ListScreensResponse>, Status> {
        let api = &self.0;
        let caller = api.admit(&req, Action::ListScreens).await?;
        let result = api.broker.list_screens();
        let screens = api.finish(&caller, Action::ListScreens, result).await?;
        let now = api.broker.now();
        Ok(Response::new(pb::ListScreensResponse {
            screens: screens.iter().map(|r| screen_to_pb(r, now)).collect(),
        }))
    }
}

fn screen_to_pb(r: &ScreenRecord, now: crate::clock::Timestamp) -> pb::Screen {
    pb::Screen {
        name: r.name.to_string(),
        status: r.status(now).to_owned(),
        paired_by: r.paired_by.clone(),
        paired_at_ms: r.paired_at.millis(),
        code_expires_at_ms: r.code_expires_at.millis(),
        session_opened_at_ms: r.session_opened_at.map_or(0, |t| t.millis()),
        revoked_at_ms: r.revoked_at.map_or(0, |t| t.millis()),
        revoked_by: r.revoked_by.clone(),
    }
}
