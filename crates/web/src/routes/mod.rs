//! The pages, by area. Each handler extracts what it needs (the signed-in user, a
//! checked form), asks [`crate::authz::allowed`], calls the domain or the store, and
//! renders a template. Areas not yet here are still in `lib.rs`, `capture.rs`,
//! `manage.rs`, `reports.rs`, `research.rs` and `tokens.rs`.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod api;
pub(crate) mod capture;
pub(crate) mod caseload;
pub(crate) mod clients;
pub(crate) mod dashboard;
pub(crate) mod governance;
pub(crate) mod home;
pub(crate) mod reports;
pub(crate) mod research;
pub(crate) mod service;
pub(crate) mod tokens;

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixed data for the pages' snapshots, and the check that hostile text is escaped
    //! in the HTML and encoded in every link.

    use crate::authz::ServiceScope;
    use crate::users::{Role, User};
    use crate::{Ctx, auth};

    /// A signed-in health trainer of service 1.
    pub fn ctx() -> Ctx {
        Ctx {
            user: user(Role::HealthTrainer),
            session: auth::Session {
                session_hash: "hash".into(),
                user_id: 7,
                csrf_token: "token".into(),
                second_factor_done: true,
                last_seen_at: 0,
                created_at: 0,
            },
        }
    }

    /// Service 1, by a reference.
    pub fn scope(reference: &str) -> ServiceScope {
        ServiceScope {
            service_id: 1,
            service_ref: reference.to_string(),
            commissioner_org_ref: "O1".into(),
        }
    }

    /// Text a person could type that HTML, a URL or a query would read as syntax.
    pub const HOSTILE: &str = "<script>alert(1)</script> \"O'Neill\" & A/B #1 ?x=y";

    /// A user of a role, with a display name that is itself hostile.
    pub fn user(role: Role) -> User {
        User {
            user_id: 7,
            username: "sam".into(),
            display_name: format!("Sam {HOSTILE}"),
            role,
            service_id: Some(1),
            worker_ref: Some("W1".into()),
            org_ref: Some("O1".into()),
            analyst_services: None,
            password_hash: String::new(),
            totp_secret: None,
            disabled: false,
            failed_logins: 0,
            locked_until: None,
            totp_last_step: None,
            must_change_password: false,
        }
    }

    /// The hostile text appears only escaped, and every link made from it is encoded.
    pub fn assert_hostile_escaped(html: &str) {
        assert!(!html.contains("<script>"), "raw script in {html}");
        assert!(!html.contains("\"O'Neill\""), "raw quotes in {html}");
        assert!(
            html.contains("&#60;script&#62;"),
            "the text escaped once in {html}"
        );
        assert!(!html.contains("&#38;#"), "text escaped twice in {html}");
        assert!(
            !html.contains("&#60;div"),
            "a component escaped as text in {html}"
        );
        for href in html.split("href=\"").skip(1) {
            let href = href[..href.find('"').expect("a closed attribute")].replace("&#38;", "&");
            for c in [' ', '<', '>', '\'', '#'] {
                assert!(
                    !href.contains(c) || (c == '#' && href.starts_with('#')),
                    "{c:?} not encoded in link {href}"
                );
            }
        }
    }
}
