//! The pages' HTML: askama templates (in `templates/`) that escape every value they are
//! given, a base layout every page extends, the components pages are built from, and
//! [`Url`], the one way a link is made.
//!
//! Text reaches a page only through a template, which escapes it. A piece of HTML made
//! elsewhere enters a page only as [`Markup`], which only rendering a template, the
//! report crate's articles (with their charts) or text compiled into the program can
//! make; askama writes `Markup` as it is and escapes everything else.

use crate::users::{FieldError, User};
use askama::Template;
use std::fmt;

/// HTML that a template rendered: written into another template as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Markup(String);

impl Markup {
    /// A template's HTML.
    pub fn render(t: &impl Template) -> Markup {
        Markup(t.render().expect("a template writes to a String"))
    }

    /// The articles of reports, which only the report crate makes (its charts' SVG
    /// included), every value in them escaped there.
    pub fn from_articles(articles: dcrs_report::html::Articles) -> Markup {
        Markup(articles.as_str().to_string())
    }

    /// Text compiled into the program (a stylesheet), not from a person or a database.
    pub fn from_static(text: &'static str) -> Markup {
        Markup(text.to_string())
    }

    /// Several pieces one after the other.
    pub fn concat(parts: impl IntoIterator<Item = Markup>) -> Markup {
        Markup(parts.into_iter().map(|m| m.0).collect())
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Markup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Markup {}

/// The account shown in the header of a signed-in page, with the sign-out form's token.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub role: &'static str,
    pub csrf: String,
}

/// What every page's base layout needs: its title (the `<title>` and the heading) and,
/// when someone is signed in, their account.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub account: Option<Account>,
    /// A back link before the heading ([`BackLink`]).
    pub back: Option<Markup>,
    /// A notification before the heading ([`Banner`]).
    pub notice: Option<Markup>,
    /// The page shows a form's errors: its title starts "Error:".
    pub failed: bool,
}

impl Layout {
    /// A page for someone not signed in (sign-in, errors).
    pub fn public(title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            account: None,
            back: None,
            notice: None,
            failed: false,
        }
    }

    /// A page for a signed-in user.
    pub fn signed_in(title: impl Into<String>, user: &User, csrf: &str) -> Layout {
        Layout {
            title: title.into(),
            account: Some(Account {
                name: user.display_name.clone(),
                role: user.role.label(),
                csrf: csrf.to_string(),
            }),
            back: None,
            notice: None,
            failed: false,
        }
    }

    /// The page with a link back to where the person came from.
    /// The layout of a form shown with these errors (none: as it is).
    pub fn failed(mut self, errors: &[FieldError]) -> Layout {
        self.failed = !errors.is_empty();
        self
    }

    pub fn back(mut self, href: &Url, text: &str) -> Layout {
        self.back = Some(Markup::render(&BackLink { href, text }));
        self
    }

    /// The page with a notification of what was just done.
    pub fn notice(mut self, text: &str) -> Layout {
        self.notice = Some(Markup::render(&Banner { text }));
        self
    }
}

/// A page whose body is already HTML: the base layout around it.
#[derive(Template)]
#[template(path = "page.html")]
pub struct Page {
    pub layout: Layout,
    pub body: Markup,
}

/// The error summary at the top of a form: each problem links to its field.
#[derive(Template)]
#[template(path = "components/error_summary.html")]
pub struct ErrorSummary<'a> {
    pub errors: &'a [FieldError],
}

/// The hidden field with the session's token that every form carries.
#[derive(Template)]
#[template(path = "components/csrf.html")]
pub struct Csrf<'a> {
    pub token: &'a str,
}

/// A labelled input with its hint and its error.
#[derive(Template)]
#[template(path = "components/input.html")]
pub struct Input<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub autocomplete: &'a str,
    /// The keyboard a phone shows (`decimal` for numbers with a point).
    pub inputmode: Option<&'a str>,
}

impl<'a> Input<'a> {
    /// A text input, its error taken from the form's errors.
    pub fn text(name: &'a str, label: &'a str, value: &'a str, errors: &'a [FieldError]) -> Self {
        Input {
            name,
            label,
            kind: "text",
            value,
            hint: None,
            error: error_of(name, errors),
            autocomplete: "off",
            inputmode: None,
        }
    }

    /// A password input: what was typed is never sent back.
    pub fn password(name: &'a str, label: &'a str, errors: &'a [FieldError]) -> Self {
        Input {
            kind: "password",
            ..Input::text(name, label, "", errors)
        }
    }

    pub fn hint(self, hint: &'a str) -> Self {
        Input {
            hint: Some(hint),
            ..self
        }
    }

    pub fn autocomplete(self, autocomplete: &'a str) -> Self {
        Input {
            autocomplete,
            ..self
        }
    }

    pub fn kind(self, kind: &'a str) -> Self {
        Input { kind, ..self }
    }

    /// A number a phone's keyboard types with digits and a point.
    pub fn decimal(self) -> Self {
        Input {
            inputmode: Some("decimal"),
            ..self
        }
    }
}

/// A short note in an inset, announced when it appears (a postcode's area, a BMI).
#[derive(Template)]
#[template(path = "components/inset.html")]
pub struct Inset<'a> {
    pub text: &'a str,
}

/// A notification that something was done ("Session saved"), announced when the page
/// opens.
#[derive(Template)]
#[template(path = "components/banner.html")]
pub struct Banner<'a> {
    pub text: &'a str,
}

/// A link back to the page a person came from, before the heading.
#[derive(Template)]
#[template(path = "components/back_link.html")]
pub struct BackLink<'a> {
    pub href: &'a Url,
    pub text: &'a str,
}

/// A select of (value, words) options.
#[derive(Template)]
#[template(path = "components/select.html")]
pub struct Select<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub options: Vec<(&'a str, &'a str)>,
    pub selected: &'a str,
    pub error: Option<&'a str>,
}

impl<'a> Select<'a> {
    /// A select, its error taken from the form's errors.
    pub fn new(
        name: &'a str,
        label: &'a str,
        options: Vec<(&'a str, &'a str)>,
        selected: &'a str,
        errors: &'a [FieldError],
    ) -> Self {
        Select {
            name,
            label,
            options,
            selected,
            error: error_of(name, errors),
        }
    }
}

/// A question answered by one of a few options, each a radio button: the design
/// system's choice over a select for up to about six options. The first button has the
/// field's name as its id, so the error summary's link reaches it.
#[derive(Template)]
#[template(path = "components/radios.html")]
pub struct Radios<'a> {
    pub name: &'a str,
    pub legend: &'a str,
    pub hint: Option<&'a str>,
    pub options: Vec<(&'a str, &'a str)>,
    pub selected: &'a str,
    pub error: Option<&'a str>,
}

impl<'a> Radios<'a> {
    /// Radios, their error taken from the form's errors.
    pub fn new(
        name: &'a str,
        legend: &'a str,
        options: Vec<(&'a str, &'a str)>,
        selected: &'a str,
        errors: &'a [FieldError],
    ) -> Self {
        Radios {
            name,
            legend,
            hint: None,
            options,
            selected,
            error: error_of(name, errors),
        }
    }

    pub fn hint(self, hint: &'a str) -> Self {
        Radios {
            hint: Some(hint),
            ..self
        }
    }

    /// The id of the option at this place: the field's name for the first.
    fn radio_id(&self, index: &usize) -> String {
        match *index {
            0 => self.name.to_string(),
            i => format!("{}-{}", self.name, i + 1),
        }
    }
}

/// A date people know by heart (a date of birth) as day, month and year boxes. Its value
/// is written `YYYY-MM-DD`; what was typed into the boxes, even when it is not a date,
/// comes back in them (see [`DateInput::joined`]).
#[derive(Template)]
#[template(path = "components/date_input.html")]
pub struct DateInput<'a> {
    pub name: &'a str,
    pub legend: &'a str,
    pub hint: &'a str,
    pub day: &'a str,
    pub month: &'a str,
    pub year: &'a str,
    pub error: Option<&'a str>,
}

impl<'a> DateInput<'a> {
    /// The boxes for a value (`YYYY-MM-DD`, or the parts typed joined by `-`), its error
    /// taken from the form's errors.
    pub fn new(name: &'a str, legend: &'a str, value: &'a str, errors: &'a [FieldError]) -> Self {
        let mut parts = value.splitn(3, '-');
        let (year, month, day) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        DateInput {
            name,
            legend,
            hint: "For example, 31 3 1980",
            day: day.trim_start_matches('0'),
            month: month.trim_start_matches('0'),
            year,
            error: error_of(name, errors),
        }
    }

    /// The value of the three boxes as posted: `YYYY-MM-DD` when each holds a number
    /// (the rules then say whether it is a date), the parts as typed joined by `-`
    /// otherwise; `None` when the form did not send the boxes.
    pub fn joined(
        name: &str,
        posted: &std::collections::HashMap<String, String>,
    ) -> Option<String> {
        let part = |p: &str| {
            posted
                .get(&format!("{name}-{p}"))
                .map(|v| v.trim().to_string())
        };
        let (day, month, year) = (part("day")?, part("month")?, part("year")?);
        if day.is_empty() && month.is_empty() && year.is_empty() {
            return Some(String::new());
        }
        let number = |v: &str| v.parse::<u32>().ok();
        Some(match (number(&day), number(&month), number(&year)) {
            (Some(d), Some(m), Some(y)) if year.len() == 4 => format!("{y:04}-{m:02}-{d:02}"),
            _ => format!("{year}-{month}-{day}"),
        })
    }
}

/// Where a page of a long list is, with links to the pages before and after it.
#[derive(Template)]
#[template(path = "components/pagination.html")]
pub struct Pagination {
    pub shown: String,
    pub previous: Option<Url>,
    pub next: Option<Url>,
}

impl Pagination {
    /// Page `number` (from 1) of `total` rows, `size` a page, each row one of `noun`
    /// (one, several); the other pages are the address with `page` set.
    pub fn new(at: &Url, number: i64, size: i64, total: i64, noun: (&str, &str)) -> Self {
        let pages = ((total + size - 1) / size).max(1);
        let number = number.clamp(1, pages);
        let page = |n: i64| at.clone().with("page", &n.to_string());
        let first = (number - 1) * size + 1;
        let last = (number * size).min(total);
        let grouped = dcrs_report::html::grouped;
        let (one, several) = noun;
        let shown = match total {
            0 => format!("No {several}"),
            1 => format!("1 {one}"),
            _ if pages == 1 => format!("{} {several}", grouped(total)),
            _ => format!(
                "{} to {} of {} {several} (page {number} of {pages})",
                grouped(first),
                grouped(last),
                grouped(total)
            ),
        };
        Pagination {
            shown,
            previous: (number > 1).then(|| page(number - 1)),
            next: (number < pages).then(|| page(number + 1)),
        }
    }
}

/// A summary list of (key, value) rows.
#[derive(Template)]
#[template(path = "components/summary_list.html")]
pub struct SummaryList<'a> {
    pub rows: Vec<(&'a str, String)>,
}

/// A table whose first cell in each row heads the row. Cells are text (escaped) or
/// [`Markup`] (a link, say), both through [`Cell`].
#[derive(Template)]
#[template(path = "components/table.html")]
pub struct Table<'a> {
    pub caption: &'a str,
    pub headings: &'a [&'a str],
    pub rows: Vec<Vec<Cell>>,
}

/// A table cell: text, escaped when written, or markup made by a template.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Markup(Markup),
}

/// A "Change" link, with what it changes for screen readers.
#[derive(Template)]
#[template(path = "components/change_link.html")]
pub struct ChangeLink<'a> {
    pub href: &'a Url,
    pub what: &'a str,
}

/// A link: the words and where they go.
#[derive(Template)]
#[template(path = "components/link.html")]
pub struct Link<'a> {
    pub href: &'a Url,
    pub text: &'a str,
}

impl Link<'_> {
    pub fn markup(href: &Url, text: &str) -> Markup {
        Markup::render(&Link { href, text })
    }
}

// A component's Display is its template, which escaped what it was given: written into
// a page as it is.
impl askama::filters::HtmlSafe for ErrorSummary<'_> {}
impl askama::filters::HtmlSafe for Csrf<'_> {}
impl askama::filters::HtmlSafe for Input<'_> {}
impl askama::filters::HtmlSafe for Select<'_> {}
impl askama::filters::HtmlSafe for SummaryList<'_> {}
impl askama::filters::HtmlSafe for Table<'_> {}
impl askama::filters::HtmlSafe for Link<'_> {}
impl askama::filters::HtmlSafe for Inset<'_> {}
impl askama::filters::HtmlSafe for Banner<'_> {}
impl askama::filters::HtmlSafe for BackLink<'_> {}
impl askama::filters::HtmlSafe for Radios<'_> {}
impl askama::filters::HtmlSafe for Pagination {}
impl askama::filters::HtmlSafe for DateInput<'_> {}

fn error_of<'a>(name: &str, errors: &'a [FieldError]) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == name)
        .map(|e| e.message.as_str())
}

/// A link's address within the application: path segments, each percent-encoded (a
/// reference may hold `/`, `#`, `?` or spaces), and a query of encoded pairs. Written
/// into a page it is escaped again as an attribute, so `&` between pairs is `&amp;`.
#[derive(Debug, Clone, PartialEq)]
pub struct Url {
    path: String,
    query: Vec<(String, String)>,
}

/// What is left as it is in a path segment: letters, digits and `-._~`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl Url {
    /// `/` followed by the segments, each encoded.
    pub fn path<S: AsRef<str>>(segments: &[S]) -> Url {
        let mut path = String::new();
        for s in segments {
            path.push('/');
            path.extend(percent_encoding::utf8_percent_encode(s.as_ref(), SEGMENT));
        }
        if path.is_empty() {
            path.push('/');
        }
        Url {
            path,
            query: Vec::new(),
        }
    }

    /// The same address with a query pair added.
    pub fn with(mut self, key: &str, value: &str) -> Url {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// The address with a fragment (`#id`) of an element on its page.
    pub fn fragment(&self, id: &str) -> String {
        format!(
            "{self}#{}",
            percent_encoding::utf8_percent_encode(id, SEGMENT)
        )
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        for (i, (k, v)) in self.query.iter().enumerate() {
            write!(
                f,
                "{}{}={}",
                if i == 0 { "?" } else { "&" },
                percent_encoding::utf8_percent_encode(k, SEGMENT),
                percent_encoding::utf8_percent_encode(v, SEGMENT)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_encodes_each_part() {
        let u = Url::path(&["services", "A/B #1?", "clients"]).with("q", "x&y=z");
        assert_eq!(
            u.to_string(),
            "/services/A%2FB%20%231%3F/clients?q=x%26y%3Dz"
        );
        assert_eq!(Url::path::<&str>(&[]).to_string(), "/");
    }

    #[test]
    fn pagination_says_where_a_page_is_and_links_its_neighbours() {
        let at = Url::path(&["services", "S/1", "clients"]);
        let noun = ("client", "clients");
        let middle = Pagination::new(&at, 2, 50, 2_300, noun);
        assert_eq!(middle.shown, "51 to 100 of 2,300 clients (page 2 of 46)");
        let link = |u: &Option<Url>| u.as_ref().map(Url::to_string);
        assert_eq!(
            link(&middle.previous).as_deref(),
            Some("/services/S%2F1/clients?page=1")
        );
        assert_eq!(
            link(&middle.next).as_deref(),
            Some("/services/S%2F1/clients?page=3")
        );
        let last = Pagination::new(&at, 46, 50, 2_300, noun);
        assert_eq!(
            last.shown,
            "2,251 to 2,300 of 2,300 clients (page 46 of 46)"
        );
        assert!(last.next.is_none());
        // A page past the end is the last one; one list page says only how many.
        let past = Pagination::new(&at, 99, 50, 120, noun);
        assert_eq!(past.shown, "101 to 120 of 120 clients (page 3 of 3)");
        assert_eq!(Pagination::new(&at, 1, 50, 1, noun).shown, "1 client");
        assert_eq!(Pagination::new(&at, 1, 50, 0, noun).shown, "No clients");
        let html = Markup::render(&Pagination::new(&at, 1, 50, 7, noun)).into_string();
        assert!(!html.contains("<ul>"), "{html}");
    }

    #[test]
    fn radios_give_the_first_button_the_field_name_and_check_the_chosen_one() {
        let errors = [FieldError::new("access", "Choose an access")];
        let options = vec![("read", "Read <only>"), ("write", "Read and write")];
        let html = Markup::render(&Radios::new("access", "Access", options, "write", &errors))
            .into_string();
        assert!(
            html.contains("<input type=\"radio\" id=\"access\" name=\"access\" value=\"read\">"),
            "{html}"
        );
        assert!(
            html.contains("id=\"access-2\" name=\"access\" value=\"write\" checked>"),
            "{html}"
        );
        assert!(html.contains("Read &#60;only&#62;"), "{html}");
        assert!(html.contains("aria-describedby=\"access-error\""), "{html}");
    }

    #[test]
    fn text_is_escaped_and_markup_is_not() {
        let errors = [FieldError {
            field: "name",
            message: "<script>\"&'".into(),
        }];
        let html = Markup::render(&Input::text("name", "Name <b>", "a\"b", &errors)).into_string();
        assert!(html.contains("Name &#60;b&#62;"), "{html}");
        assert!(html.contains("value=\"a&#34;b\""), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        let page = Markup::render(&Page {
            layout: Layout::public("T & <i>"),
            body: Markup::render(&ErrorSummary { errors: &errors }),
        })
        .into_string();
        assert!(
            page.contains("<title>T &#38; &#60;i&#62; - dcrs</title>"),
            "{page}"
        );
        assert!(page.contains("<div class=\"error-summary\""), "{page}");
    }
}
