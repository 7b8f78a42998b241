//! What a handler takes from a request before it does anything: the signed-in user (at
//! the stage of signing in the page needs), and a form posted from our own pages with
//! its CSRF token checked and its fields typed. Authorisation stays in
//! [`crate::authz::allowed`]; these only say who is asking.

use crate::{App, Ctx, WebError, check_origin_and_token, signed_in, signed_in_any};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

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

macro_rules! from_parts {
    ($t:ident) => {
        impl FromRequestParts<App> for $t {
            type Rejection = WebError;
            async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, WebError> {
                <$t as Stage>::ctx(app, &parts.headers).await.map($t)
            }
        }
    };
}
from_parts!(SignedIn);
from_parts!(PasswordDue);
from_parts!(SecondFactorDue);

/// The token every form carries, read apart from the form's own fields.
#[derive(serde::Deserialize)]
struct Token {
    csrf: Option<String>,
}

/// A form posted by a user at stage `S`: sent from our own pages (not cross-site, with
/// the session's token) and read into `T`. A form that does not read as `T` is a
/// request no page of ours sends: refused as unreadable.
pub(crate) struct Posted<T, S = SignedIn> {
    pub ctx: Ctx,
    pub form: T,
    _stage: std::marker::PhantomData<S>,
}

impl<T: DeserializeOwned + Send, S: Stage> FromRequest<App> for Posted<T, S> {
    type Rejection = WebError;

    async fn from_request(req: Request, app: &App) -> Result<Self, WebError> {
        let (parts, body) = req.into_parts();
        let ctx = S::ctx(app, &parts.headers).await?;
        let headers = parts.headers.clone();
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|_| WebError::BadRequest)?;
        let token: Token =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
        check_origin_and_token(&headers, &ctx.session.csrf_token, token.csrf.as_deref())?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
        Ok(Posted {
            ctx,
            form,
            _stage: std::marker::PhantomData,
        })
    }
}
