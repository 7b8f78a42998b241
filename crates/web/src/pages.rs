//! HTML of the pages: one layout, form parts that carry their errors beside the field and
//! in a summary at the top, tables and summary lists. Every piece of text that comes from
//! a person or the database passes through [`esc`].

use crate::users::{FieldError, User};

/// Escapes text for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    dcrs_report::chart::escape(text)
}

/// The page: header (with the account and a sign-out button when signed in), the title
/// and the body.
pub fn layout(title: &str, user: Option<(&User, &str)>, body: &str) -> String {
    let account = match user {
        Some((u, csrf)) => format!(
            "<div class=\"header-account\"><span>{} ({})</span>\
             <a href=\"/account/password\">Change password</a>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button class=\"link-button\" type=\"submit\">Sign out</button></form></div>",
            esc(&u.display_name),
            esc(u.role.label()),
            esc(csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} - dcrs</title>\n<link rel=\"stylesheet\" href=\"/static/app.css\">\n</head>\n<body>\n\
         <a class=\"skip-link\" href=\"#main\">Skip to main content</a>\n\
         <header class=\"header\"><div class=\"width-container\">\
         <a class=\"header-logo\" href=\"/\">dcrs</a><span>Health trainer services</span>{account}\
         </div></header>\n<div class=\"width-container\"><main id=\"main\">\n<h1>{}</h1>\n{body}\n</main></div>\n</body>\n</html>\n",
        esc(title),
        esc(title)
    )
}

/// The error summary at the top of a form.
pub fn error_summary(errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let items: String = errors
        .iter()
        .map(|e| {
            format!(
                "<li><a href=\"#{}\">{}</a></li>",
                esc(e.field),
                esc(&e.message)
            )
        })
        .collect();
    format!(
        "<div class=\"error-summary\" role=\"alert\" tabindex=\"-1\" aria-labelledby=\"error-summary-title\">\
         <h2 id=\"error-summary-title\">There is a problem</h2><ul>{items}</ul></div>"
    )
}

/// A labelled text input with its hint and error.
pub fn input(
    raw_name: &str,
    label: &str,
    kind: &str,
    value: &str,
    hint: Option<&str>,
    errors: &[FieldError],
    autocomplete: &str,
) -> String {
    let error = errors.iter().find(|e| e.field == raw_name);
    let name = esc(raw_name);
    let hint_html = hint
        .map(|h| format!("<p class=\"hint\" id=\"{name}-hint\">{}</p>", esc(h)))
        .unwrap_or_default();
    let error_html = error
        .map(|e| {
            format!(
                "<p class=\"error-message\" id=\"{name}-error\"><span class=\"visually-hidden\">Error:</span> {}</p>",
                esc(&e.message)
            )
        })
        .unwrap_or_default();
    let described: Vec<String> = [
        hint.map(|_| format!("{name}-hint")),
        error.map(|_| format!("{name}-error")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let aria = if described.is_empty() {
        String::new()
    } else {
        format!(" aria-describedby=\"{}\"", described.join(" "))
    };
    let value_attr = if kind == "password" {
        String::new()
    } else {
        format!(" value=\"{}\"", esc(value))
    };
    format!(
        "<div class=\"form-group{}\"><label for=\"{name}\">{}</label>{hint_html}{error_html}\
         <input type=\"{kind}\" id=\"{name}\" name=\"{name}\"{value_attr} autocomplete=\"{autocomplete}\"{aria}{}></div>",
        if error.is_some() {
            " form-group--error"
        } else {
            ""
        },
        esc(label),
        if error.is_some() {
            " aria-invalid=\"true\""
        } else {
            ""
        }
    )
}

/// A select with options (value, label).
pub fn select(
    raw_name: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: &str,
    errors: &[FieldError],
) -> String {
    let error = errors.iter().find(|e| e.field == raw_name);
    let name = esc(raw_name);
    let opts: String = options
        .iter()
        .map(|(v, l)| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                esc(v),
                if *v == selected { " selected" } else { "" },
                esc(l)
            )
        })
        .collect();
    format!(
        "<div class=\"form-group{}\"><label for=\"{name}\">{}</label>{}<select id=\"{name}\" name=\"{name}\">{opts}</select></div>",
        if error.is_some() {
            " form-group--error"
        } else {
            ""
        },
        esc(label),
        error
            .map(|e| format!(
                "<p class=\"error-message\" id=\"{name}-error\">{}</p>",
                esc(&e.message)
            ))
            .unwrap_or_default()
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A table of text cells (escaped), with a caption.
pub fn table(caption: &str, headings: &[&str], rows: &[Vec<String>]) -> String {
    let head: String = headings
        .iter()
        .map(|h| format!("<th scope=\"col\">{}</th>", esc(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|r| {
            let cells: String = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("<th scope=\"row\">{c}</th>")
                    } else {
                        format!("<td>{c}</td>")
                    }
                })
                .collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!(
        "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-label=\"{0}\"><table><caption class=\"visually-hidden\">{0}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>",
        esc(caption)
    )
}

/// A summary list of (key, value) pairs; values are escaped.
pub fn summary(pairs: &[(&str, String)]) -> String {
    let rows: String = pairs
        .iter()
        .map(|(k, v)| format!("<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(v)))
        .collect();
    format!("<dl class=\"summary-list\">{rows}</dl>")
}

/// A stored date (`YYYY-MM-DD`) as people in the UK write it: "7 December 2026". Text
/// that is not such a date is shown as it is.
pub(crate) fn uk_date(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso.get(..10).unwrap_or(iso), "%Y-%m-%d")
        .map_or_else(|_| iso.to_string(), |d| d.format("%-d %B %Y").to_string())
}

/// The words a person reads for a code of a field, from the dataset's catalogue; the
/// code itself when the field has no list or the code is not in it.
pub(crate) fn words(entity: dcrs_domain::Entity, field: &str, code: &str) -> String {
    dcrs_domain::catalogue::codes_of(entity, field)
        .and_then(|c| c.words_for(code))
        .map_or_else(|| code.to_string(), str::to_string)
}
