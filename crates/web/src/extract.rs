//! What a handler takes from a request before it does anything: the signed-in user (at
//! the stage of signing in the page needs), and a form posted from our own pages with
//! its CSRF token checked and its fields typed. Authorisation stays in
//! [`crate::authz::allowed`]; these only say who is asking.

use crate::authz::{Action, ServiceScope};
use crate::{App, Ctx, WebError, authorised, check_origin_and_token, signed_in, signed_in_any};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::marker::PhantomData;

/// How far through signing in a page needs its user to be.
pub(crate) trait Stage: Send + Sync {
    fn ctx(app: &App, headers: &HeaderMap) -> impl Future<Output = Result<Ctx, WebError>> + Send;
}

/// Signed in, second factor given where needed, and no password change outstanding:
/// every page but the account pages.
pub(crate) struct SignedIn(pub Ctx);

/// Signed in with the second factor given where needed; a password someone else chose
/// may still need changing (the change-password page).
pub(crate) struct PasswordDue(pub Ctx);

/// Signed in, the second factor possibly still to give (the second-factor pages).
pub(crate) struct SecondFactorDue(pub Ctx);

impl Stage for SignedIn {
    async fn ctx(app: &App, headers: &HeaderMap) -> Result<Ctx, WebError> {
        signed_in(app, headers).await
    }
}

impl Stage for PasswordDue {
    async fn ctx(app: &App, headers: &HeaderMap) -> Result<Ctx, WebError> {
        signed_in_any(app, headers, false).await
    }
}

impl Stage for SecondFactorDue {
    async fn ctx(app: &App, headers: &HeaderMap) -> Result<Ctx, WebError> {
        signed_in_any(app, headers, true).await
    }
}

/// The user of a request found once: a handler that takes the user twice (a service's
/// page that also takes a posted form) reads the session once.
struct Found<S>(Ctx, PhantomData<fn() -> S>);

impl<S> Clone for Found<S> {
    fn clone(&self) -> Self {
        Found(self.0.clone(), PhantomData)
    }
}

async fn ctx_of<S: Stage + 'static>(app: &App, parts: &mut Parts) -> Result<Ctx, WebError> {
    if let Some(Found(ctx, _)) = parts.extensions.get::<Found<S>>() {
        return Ok(ctx.clone());
    }
    let ctx = S::ctx(app, &parts.headers).await?;
    parts
        .extensions
        .insert(Found::<S>(ctx.clone(), PhantomData));
    Ok(ctx)
}

macro_rules! from_parts {
    ($t:ident) => {
        impl FromRequestParts<App> for $t {
            type Rejection = WebError;
            async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, WebError> {
                ctx_of::<$t>(app, parts).await.map($t)
            }
        }
    };
}
from_parts!(SignedIn);
from_parts!(PasswordDue);
from_parts!(SecondFactorDue);

/// A form posted by a user at stage `S`: sent from our own pages (not cross-site, with
/// the session's token) and read into `T`. A form that does not read as `T` is a
/// request no page of ours sends: refused as unreadable.
pub(crate) struct Posted<T, S = SignedIn> {
    pub ctx: Ctx,
    pub form: T,
    _stage: std::marker::PhantomData<S>,
}

impl<T: DeserializeOwned + Send, S: Stage + 'static> FromRequest<App> for Posted<T, S> {
    type Rejection = WebError;

    async fn from_request(req: Request, app: &App) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let ctx = ctx_of::<S>(app, &mut parts).await?;
        let headers = parts.headers.clone();
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|_| WebError::BadRequest)?;
        // The token every form carries, read apart from the form's own fields.
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
        let token = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str());
        check_origin_and_token(&headers, &ctx.session.csrf_token, token)?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
        Ok(Posted {
            ctx,
            form,
            _stage: std::marker::PhantomData,
        })
    }
}

/// An action on a service, as a type: what [`OnService`] asks [`crate::authz::allowed`].
pub(crate) trait Act: Send + Sync + 'static {
    const ACTION: Action;
}

macro_rules! acts {
    ($($t:ident),*) => {$(
        #[doc = concat!("[`Action::", stringify!($t), "`] as a type.")]
        pub(crate) struct $t;
        impl Act for $t {
            const ACTION: Action = Action::$t;
        }
    )*};
}
acts!(
    ViewClients,
    EditClients,
    ViewAudit,
    ViewReports,
    ManageStaff,
    GovernRecords
);

/// A signed-in user allowed to take action `A` on the service named by the route's
/// `{service}`. Otherwise "not found", audited, whether or not the service exists, so
/// a refusal tells nothing.
pub(crate) struct OnService<A> {
    pub ctx: Ctx,
    pub service: ServiceScope,
    _action: PhantomData<fn() -> A>,
}

impl<A: Act> FromRequestParts<App> for OnService<A> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, WebError> {
        let ctx = ctx_of::<SignedIn>(app, parts).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, app)
            .await
            .map_err(|_| WebError::NotFound)?;
        let service_ref = params.get("service").ok_or(WebError::NotFound)?;
        let service = authorised(app, &ctx, service_ref, A::ACTION).await?;
        Ok(OnService {
            ctx,
            service,
            _action: PhantomData,
        })
    }
}

/// An action about no one service (managing accounts or research projects): allowed, or
/// "not found", so that a refusal does not say the page exists.
pub(crate) fn require(user: &crate::users::User, action: Action) -> Result<(), WebError> {
    if crate::authz::allowed(user, action, None) {
        Ok(())
    } else {
        Err(WebError::NotFound)
    }
}
