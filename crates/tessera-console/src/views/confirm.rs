//! The confirmation every destructive action asks for: the same form posted
//! again with `confirm=yes`.

use askama::Template;
use axum::response::Response;

use crate::page::{html, Chrome};

#[derive(Template)]
#[template(path = "confirm.html")]
pub(crate) struct Confirm {
    pub(crate) chrome: Chrome,
    pub(crate) title: String,
    pub(crate) message: String,
    pub(crate) action: String,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) button: String,
    pub(crate) back: String,
}

pub(crate) fn ask(page: Confirm) -> Response {
    html(&page)
}
