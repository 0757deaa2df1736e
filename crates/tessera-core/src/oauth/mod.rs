//! OAuth 2.0 for connections: an integration's OAuth settings and the ready
//! templates, PKCE and the authorization URL, and the outbound port that
//! talks to the provider.

pub mod client;
pub mod settings;
pub mod templates;

pub use client::{ClientAuth, OAuthClient, OAuthClientConfig, OAuthError, TokenHint, TokenResponse};
pub use settings::{OAuthInput, OAuthSettings};
