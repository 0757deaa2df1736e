//! Ready OAuth settings for well-known providers. A registry entry names one
//! with `"template"`; its own `oauth` fields override the template's. Every
//! template asks for PKCE S256: providers that do not know it ignore the
//! challenge, and a registration may still turn it off (`"pkce": false`).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::client::ClientAuth;
use super::settings::OAuthSettings;

/// A template as `GET /integrations/templates` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Template name (`notion`, `github`, `slack`, `google`, `generic`).
    pub name: &'static str,
    /// Suggested category.
    pub category: &'static str,
    /// The OAuth settings it fills in.
    pub oauth: OAuthSettings,
}

/// `(authorize, token, revoke)` endpoints.
type Endpoints<'a> = (&'a str, &'a str, Option<&'a str>);

fn settings(
    (authorize, token, revoke): Endpoints<'_>,
    scopes: &[&str],
    separator: &str,
    pkce: bool,
    auth: ClientAuth,
    extra: &[(&str, &str)],
) -> OAuthSettings {
    OAuthSettings {
        authorize_url: Some(authorize.to_owned()),
        token_url: Some(token.to_owned()),
        revoke_url: revoke.map(str::to_owned),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        scope_separator: separator.to_owned(),
        pkce,
        token_auth_method: auth,
        extra_params: extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        ..OAuthSettings::default()
    }
}

/// Every template.
pub fn all() -> Vec<Template> {
    use ClientAuth::{ClientSecretBasic, ClientSecretPost};
    vec![
        Template {
            name: "notion",
            category: "productivity",
            // Notion: Basic client auth, tokens that do not expire.
            oauth: settings(
                ("https://api.notion.com/v1/oauth/authorize", "https://api.notion.com/v1/oauth/token", None),
                &[],
                " ",
                true,
                ClientSecretBasic,
                &[("owner", "user")],
            ),
        },
        Template {
            name: "github",
            category: "code",
            // GitHub apps: PKCE supported; revocation is not RFC 7009, so none.
            oauth: settings(
                ("https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token", None),
                &["repo", "read:user"],
                " ",
                true,
                ClientSecretPost,
                &[],
            ),
        },
        Template {
            name: "slack",
            category: "communication",
            // Slack joins scopes with commas.
            oauth: settings(
                ("https://slack.com/oauth/v2/authorize", "https://slack.com/api/oauth.v2.access", None),
                &["chat:write", "channels:read"],
                ",",
                true,
                ClientSecretPost,
                &[],
            ),
        },
        Template {
            name: "google",
            category: "productivity",
            // Offline access and consent, or Google issues no refresh token.
            oauth: settings(
                (
                    "https://accounts.google.com/o/oauth2/v2/auth",
                    "https://oauth2.googleapis.com/token",
                    Some("https://oauth2.googleapis.com/revoke"),
                ),
                &["openid", "email"],
                " ",
                true,
                ClientSecretPost,
                &[("access_type", "offline"), ("prompt", "consent")],
            ),
        },
        Template { name: "generic", category: "other", oauth: OAuthSettings::default() },
    ]
}

/// One template by name.
pub fn find(name: &str) -> Option<Template> {
    all().into_iter().find(|t| t.name == name)
}
