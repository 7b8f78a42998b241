//! The import format document's field reference is the catalogue's: a field, label,
//! range or code added to the catalogue without the document fails here.
//! `DCRS_UPDATE_DOCS=1 cargo test -p dcrs-domain --test docs` writes it afresh.

const BEGIN: &str = "<!-- fields: written from crates/domain/src/catalogue.rs; do not edit -->\n";
const END: &str = "<!-- end of fields -->";

#[test]
fn the_import_format_document_lists_every_field_as_the_catalogue_does() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/import-format.md");
    let doc = std::fs::read_to_string(path).expect("docs/import-format.md");
    let (Some(a), Some(b)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/import-format.md has no field reference markers");
    };
    let written = &doc[a + BEGIN.len()..b];
    let wanted = dcrs_domain::catalogue::field_reference() + "\n";
    if written != wanted {
        if std::env::var("DCRS_UPDATE_DOCS").is_ok_and(|v| v == "1") {
            let new = format!("{}{BEGIN}{wanted}{}", &doc[..a], &doc[b..]);
            std::fs::write(path, new).expect("write docs/import-format.md");
            return;
        }
        panic!(
            "docs/import-format.md's field reference differs from the catalogue; \
             run DCRS_UPDATE_DOCS=1 cargo test -p dcrs-domain --test docs"
        );
    }
}
