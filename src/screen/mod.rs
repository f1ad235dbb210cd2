//! The office warning screen: a read-only page served over HTTPS on its
//! own listener (`[screen]`), for a kiosk browser on the office wall
//! (docs/monitoring.md, "The warning screen").
//!
//! * **Who may look.** A screen is paired once: an admin runs `daypass
//!   screen pair NAME` and gets a one-time code; the kiosk opens
//!   `/pair?code=…` (or types it at `/pair`) and gets a session cookie
//!   (`Secure`, `HttpOnly`, `SameSite=Strict`). Opening the session is
//!   logged (`screen.session_opened`, with the browser's address); every
//!   page, view and event stream needs the cookie, checked against the
//!   stored hash each time, so a revoked screen goes dark at its next
//!   update.
//! * **What it shows** ([`crate::service::screens::ScreenView`]): active
//!   grants with time left, open alerts by severity with their age, the
//!   last events, the store's health. Live: `/events` is a server-sent
//!   event stream that sends a fresh view when the log grows (at most
//!   every [`MIN_GAP`]) and every [`REFRESH`]; the browser's
//!   `EventSource` reconnects by itself after a restart.
//! * **No write action exists on it**: every route is `GET` (pairing
//!   included: it only opens the screen's own session).
//! * Plain HTML, CSS and JavaScript compiled into the binary
//!   ([`page`]); nothing to build, nothing fetched from elsewhere (the
//!   content security policy allows only this origin).

mod page;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{ConnectInfo, Query, State, connect_info::Connected},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
    serve::IncomingStream,
};
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;
use tokio_stream::StreamExt as _;

use crate::{
    domain::{Name, SessionCookie},
    service::{Broker, BrokerError},
    tls::{HandshakeLimits, HttpsListener},
};

/// Fresh views are at least this far apart, however fast the log grows.
pub const MIN_GAP: Duration = Duration::from_millis(250);
/// A fresh view at least this often (time left, ages, health).
pub const REFRESH: Duration = Duration::from_secs(5);
/// How long a browser waits before reconnecting (the SSE `retry` field).
const RETRY: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct AppState {
    broker: Arc<Broker>,
    /// Turns true at shutdown: event streams end so the listener can stop.
    stopping: watch::Receiver<bool>,
}

/// The screen's routes.
pub fn router(broker: Arc<Broker>, stopping: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/pair", get(pair))
        .route(
            "/screen.css",
            get(|| async { asset("text/css", page::CSS) }),
        )
        .route(
            "/screen.js",
            get(|| async { asset("text/javascript", page::JS) }),
        )
        .route("/api/view", get(view))
        .route("/events", get(events))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(AppState { broker, stopping })
}

/// Serves the screen on `listener` (TLS with `tls`) until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<ServerConfig>,
    limits: HandshakeLimits,
    broker: Arc<Broker>,
    stopping: watch::Receiver<bool>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(broker, stopping);
    axum::serve(
        HttpsListener::new(listener, tls, limits, "the warning screen")?,
        app.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// The browser's address.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

impl Connected<IncomingStream<'_, HttpsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, HttpsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            format!("{content_type}; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The request's session cookie, if it has one of our shape.
fn cookie(headers: &HeaderMap) -> Option<SessionCookie> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SessionCookie::NAME)
        .and_then(|(_, v)| SessionCookie::parse(v))
}

/// The screen the request's cookie opens, if any.
fn session(broker: &Broker, headers: &HeaderMap) -> Result<Option<Name>, BrokerError> {
    match cookie(headers) {
        Some(c) => broker.screen_session(&c),
        None => Ok(None),
    }
}

/// The answer when the store cannot be read to check a session.
fn unavailable(e: &BrokerError) -> Response {
    tracing::warn!(error = %e, "the screen could not read its session");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the store cannot be read right now; retrying\n",
    )
        .into_response()
}

fn unpaired() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "this screen is not paired (or was revoked); open /pair\n",
    )
        .into_response()
}

async fn index(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match session(&s.broker, &headers) {
        Ok(Some(_)) => html(StatusCode::OK, page::INDEX.to_owned()),
        Ok(None) => Redirect::to("/pair").into_response(),
        Err(e) => unavailable(&e),
    }
}

#[derive(serde::Deserialize)]
struct PairQuery {
    code: Option<String>,
}

async fn pair(
    State(s): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(q): Query<PairQuery>,
) -> Response {
    let Some(code) = q.code.filter(|c| !c.trim().is_empty()) else {
        return html(StatusCode::OK, page::pair_form(None));
    };
    match s.broker.open_screen_session(&code, &peer.to_string()).await {
        Ok(Ok(cookie)) => {
            tracing::info!(screen = %cookie.name, %peer, "a warning screen opened its session");
            let set = format!(
                "{}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=31536000",
                SessionCookie::NAME,
                cookie.value()
            );
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&set) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(Err(refusal)) => {
            tracing::info!(%peer, "a warning screen's pairing code was refused");
            html(
                StatusCode::BAD_REQUEST,
                page::pair_form(Some(&refusal.to_string())),
            )
        }
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            page::pair_form(Some(&format!(
                "the server cannot pair screens right now: {e}"
            ))),
        ),
    }
}

async fn view(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let screen = match session(&s.broker, &headers) {
        Ok(Some(n)) => n,
        Ok(None) => return unpaired(),
        Err(e) => return unavailable(&e),
    };
    match view_json(&s.broker, &screen) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

fn view_json(broker: &Broker, screen: &Name) -> Result<String, String> {
    let v = broker.screen_view(screen).map_err(|e| e.to_string())?;
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

async fn events(
    State(s): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let screen = match session(&s.broker, &headers) {
        Ok(Some(n)) => n,
        Ok(None) => return unpaired(),
        Err(e) => return unavailable(&e),
    };
    let Some(cookie) = cookie(&headers) else {
        return unpaired();
    };
    tracing::info!(%screen, %peer, "a warning screen is watching");
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(4);
    tokio::spawn(feed(
        s.broker.clone(),
        s.stopping.clone(),
        screen,
        cookie,
        tx,
    ));
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Sends views to one event stream until the browser goes, the session
/// ends (a `signed-out` event, then the end) or the server stops.
async fn feed(
    broker: Arc<Broker>,
    mut stopping: watch::Receiver<bool>,
    screen: Name,
    cookie: SessionCookie,
    tx: tokio::sync::mpsc::Sender<Event>,
) {
    let mut log = broker.ledger().subscribe();
    let mut first = true;
    loop {
        if *stopping.borrow() {
            return;
        }
        match broker.screen_session(&cookie) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let _ = tx
                    .send(Event::default().event("signed-out").data("revoked"))
                    .await;
                tracing::info!(%screen, "a warning screen's session ended; its stream closed");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "the screen could not read its session"),
        }
        if let Ok(json) = view_json(&broker, &screen) {
            let mut ev = Event::default().event("view").data(json);
            if first {
                ev = ev.retry(RETRY);
                first = false;
            }
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(MIN_GAP).await;
        tokio::select! {
            changed = log.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(REFRESH) => {}
            _ = stopping.changed() => return,
            () = tx.closed() => return,
        }
    }
}
