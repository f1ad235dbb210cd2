//! The warning screen's page: plain HTML, CSS and JavaScript compiled into
//! the binary (no build step, nothing fetched from elsewhere).

pub const INDEX: &str = include_str!("page/index.html");
pub const CSS: &str = include_str!("page/screen.css");
pub const JS: &str = include_str!("page/screen.js");

/// The pairing page, with `error` (already plain text) shown above the form.
pub fn pair_form(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"pair-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>daypass · pair this screen</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/screen.css"></head>
<body class="pair"><main>
<h1>daypass warning screen</h1>
<p>This screen is not paired. An admin runs <code>daypass screen pair NAME</code> and gives you a one-time code.</p>
{error}
<form method="get" action="/pair">
<label for="code">Pairing code</label>
<input id="code" name="code" autocomplete="off" autofocus placeholder="xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxx">
<button type="submit">Pair</button>
</form></main></body></html>
"#
    )
}

use crate::domain::text::escape_html as escape;

#[cfg(test)]
mod tests {
    #[test]
    fn the_pairing_page_escapes_what_it_shows() {
        let p = super::pair_form(Some("<script>x</script>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(!p.contains("<script>x"));
    }
}
