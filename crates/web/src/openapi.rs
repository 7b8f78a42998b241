//! The API's OpenAPI 3.1 description, generated from the same tables the API runs on:
//! the dataset's entities and their fields (`dcrs_domain::Entity::fields`), the filters
//! the listings accept (`api::filterable`, `api::is_date`) and the report kinds. Adding
//! a field to the dataset adds it here; nothing is written twice.

use crate::routes::api::{self, DEFAULT_LIMIT, MAX_LIMIT};
use dcrs_domain::Entity;
use dcrs_domain::record::FieldKind;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// The document (made once).
pub fn document() -> Value {
    static DOC: LazyLock<Value> = LazyLock::new(build);
    DOC.clone()
}

/// The schema name of an entity (`OnwardReferral`).
fn schema_name(e: Entity) -> String {
    format!("{e:?}")
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The `Idempotency-Key` header of a write.
fn idempotency_param() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "A key of the caller's, new for each record written (a UUID, say). The same request sent again with the same key (a retry after the answer was lost) is answered as the first was and writes nothing; the key sent with a different request is refused (422, `idempotency_key_reused`). A request refused by the rules does not use its key. Keys are the token's user's own.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[!-~]+$"},
    })
}

fn response(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// The JSON schema of one field's value, from the dataset's field catalogue: its
/// label, hint and unit as the description, its range, length or code list as limits.
fn field_schema(e: Entity, name: &str, kind: FieldKind, own: bool) -> Value {
    use dcrs_domain::catalogue::{Shape, about};
    let t = match kind {
        FieldKind::Int => "integer",
        FieldKind::Real => "number",
        _ => "string",
    };
    let mut s = Map::new();
    if own {
        s.insert("type".into(), json!(t));
        s.insert("minLength".into(), json!(1));
        s.insert("maxLength".into(), json!(64));
    } else {
        s.insert("type".into(), json!([t, "null"]));
    }
    let a = about(e, name).expect("a field of the entity");
    let mut description = a.label_with_unit();
    match a.shape {
        Shape::Code(list) if list.several => {
            let codes: Vec<&str> = list.words().iter().map(|(c, _)| *c).collect();
            let one = codes.join("|");
            s.insert("pattern".into(), json!(format!("^({one})(;({one}))*$")));
            description
                .push_str(". One or more codes of the dataset standard's list, separated by ;");
        }
        Shape::Code(list) => {
            let mut values: Vec<Value> = list.words().iter().map(|(c, _)| json!(c)).collect();
            values.push(Value::Null);
            s.insert("enum".into(), Value::Array(values));
            let words: Vec<String> = list
                .words()
                .iter()
                .map(|(c, w)| format!("{c}: {w}"))
                .collect();
            description.push_str(&format!(". A code: {}", words.join("; ")));
        }
        Shape::Date => {
            s.insert("format".into(), json!("date"));
            description.push_str(". A date, YYYY-MM-DD");
        }
        Shape::Number { min, max, .. } => {
            s.insert("minimum".into(), json!(min));
            s.insert("maximum".into(), json!(max));
        }
        Shape::Text { max } if !own => {
            s.insert("maxLength".into(), json!(max));
        }
        Shape::Text { .. } => {}
        Shape::Reference => match kind {
            FieldKind::OwnRef => {
                description = "The record's own reference, unique within its service".into()
            }
            FieldKind::ServiceRef => description = "The service the record belongs to".into(),
            FieldKind::Ref(p) => {
                description = format!("The reference of the {} it belongs to", p.label())
            }
            _ => {}
        },
    }
    if let Some(h) = a.hint {
        description.push_str(&format!(". {h}"));
    }
    description.push('.');
    s.insert("description".into(), json!(description));
    Value::Object(s)
}

/// The record as stored (every field present) and as sent (any field may be left out).
fn entity_schemas(e: Entity) -> (Value, Value) {
    let mut props = Map::new();
    let mut input = Map::new();
    for f in e.fields() {
        props.insert(
            f.name.into(),
            field_schema(e, f.name, f.kind, f.kind == FieldKind::OwnRef),
        );
        input.insert(f.name.into(), field_schema(e, f.name, f.kind, false));
    }
    let names: Vec<&str> = e.fields().iter().map(|f| f.name).collect();
    (
        json!({
            "type": "object",
            "description": format!("A {} as stored.", e.label()),
            "properties": props,
            "required": names,
            "additionalProperties": false,
        }),
        {
            let required: Vec<&str> = dcrs_domain::catalogue::fields_of(e)
                .into_iter()
                .filter(|f| f.required && f.name != "service_ref")
                .map(|f| f.name)
                .collect();
            json!({
                "type": "object",
                "description": format!(
                    "A {} to store. On update the reference is taken from the address, and fields left out \
                     are stored blank (an update replaces the record).",
                    e.label()
                ),
                "properties": input,
                "required": required,
                "additionalProperties": false,
            })
        },
    )
}

/// The schema of an update: as a create's, but the reference comes from the address.
fn update_schema(e: Entity, input: &Value) -> Value {
    let mut s = input.clone();
    if let Some(Value::Array(r)) = s.get_mut("required") {
        r.retain(|f| f != e.ref_field());
    }
    s
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// The listing's parameters: paging, then a filter per text or reference field and a
/// range per date.
fn list_params(e: Entity) -> Vec<Value> {
    let mut out = vec![
        query_param(
            "limit",
            &format!("Records per page (default {DEFAULT_LIMIT})."),
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ),
        query_param(
            "after",
            "Start after this reference: the `next_after` of the page before.",
            json!({"type": "string"}),
        ),
    ];
    for f in e.fields().iter().filter(|f| api::filterable(f.kind)) {
        out.push(query_param(
            f.name,
            "Only records whose field equals this.",
            json!({"type": "string"}),
        ));
        if api::is_date(f.name) {
            for (suffix, what) in [("from", "on or after"), ("to", "on or before")] {
                out.push(query_param(
                    &format!("{}_{suffix}", f.name),
                    &format!("Only records whose {} is {what} this date.", f.name),
                    json!({"type": "string", "format": "date"}),
                ));
            }
        }
    }
    out
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The operations of one entity's collection and record addresses.
fn entity_paths(e: Entity, paths: &mut Map<String, Value>) {
    let name = schema_name(e);
    let (collection_path, record_path, mut base_params, record_param) = match e {
        Entity::Organisation => (
            "/api/v1/organisations".to_string(),
            "/api/v1/organisations/{reference}".to_string(),
            vec![],
            path_param("reference", "The organisation's reference."),
        ),
        Entity::Service => (
            "/api/v1/services".to_string(),
            "/api/v1/services/{service}".to_string(),
            vec![],
            path_param("service", "The service's reference."),
        ),
        _ => (
            format!("/api/v1/services/{{service}}/{}", api::collection(e)),
            format!(
                "/api/v1/services/{{service}}/{}/{{reference}}",
                api::collection(e)
            ),
            vec![path_param("service", "The service's reference.")],
            path_param("reference", &format!("The {}'s reference.", e.label())),
        ),
    };
    let tag = api::collection(e);
    let plural = format!("{}s", e.label());
    // A write may carry a key of its own: sent again with it, it is answered as the
    // first was and stored once.
    let mut write_params = base_params.clone();
    write_params.push(idempotency_param());
    let mut list_parameters = base_params.clone();
    list_parameters.extend(list_params(e));
    paths.insert(
        collection_path,
        json!({
            "get": {
                "operationId": format!("list{name}s"),
                "tags": [tag],
                "summary": format!("List {plural}"),
                "description": "In order of reference, a page at a time. Reads of a service's records are audited with the records listed.",
                "parameters": list_parameters,
                "responses": {
                    "200": ok(&format!("A page of {plural}."), json!({
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": reference(&name)},
                            "next_after": {"type": ["string", "null"], "description": "Pass as `after` for the next page; null on the last."},
                        },
                        "required": ["items", "next_after"],
                        "additionalProperties": false,
                    })),
                    "400": response("BadRequest"), "401": response("Unauthorised"),
                    "403": response("Forbidden"), "404": response("NotFound"),
                },
            },
            "post": {
                "operationId": format!("create{name}"),
                "tags": [tag],
                "summary": format!("Add a {}", e.label()),
                "description": "Checked by every rule of the dataset, as an import is; nothing is saved unless it passes. Audited with its values.",
                "parameters": write_params.clone(),
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference(&format!("{name}Input"))}}},
                "responses": {
                    "201": {
                        "description": "Stored.",
                        "headers": {"Location": {"description": "The record's address.", "schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": reference(&format!("{name}Written"))}},
                    },
                    "400": response("BadRequest"), "401": response("Unauthorised"),
                    "403": response("Forbidden"), "404": response("NotFound"),
                    "409": response("Conflict"), "422": response("Invalid"),
                },
            },
        }),
    );
    base_params.push(record_param.clone());
    write_params.push(record_param);
    paths.insert(
        record_path,
        json!({
            "get": {
                "operationId": format!("get{name}"),
                "tags": [tag],
                "summary": format!("Read a {}", e.label()),
                "parameters": base_params.clone(),
                "responses": {
                    "200": ok(&format!("The {}.", e.label()), reference(&name)),
                    "401": response("Unauthorised"), "403": response("Forbidden"), "404": response("NotFound"),
                },
            },
            "put": {
                "operationId": format!("update{name}"),
                "tags": [tag],
                "summary": format!("Change a {}", e.label()),
                "description": "Replaces the record: fields left out are stored blank. Checked and audited as a create is.",
                "parameters": write_params,
                "requestBody": {"required": true, "content": {"application/json": {"schema": reference(&format!("{name}Update"))}}},
                "responses": {
                    "200": ok("Stored.", reference(&format!("{name}Written"))),
                    "400": response("BadRequest"), "401": response("Unauthorised"),
                    "403": response("Forbidden"), "404": response("NotFound"), "422": response("Invalid"),
                },
            },
        }),
    );
}

const KINDS: [&str; 7] = [
    "activity",
    "reach",
    "outcomes",
    "pathway",
    "workforce",
    "data-quality",
    "pack",
];

fn build() -> Value {
    let mut schemas = Map::new();
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "properties": {
                "record": {"type": ["string", "null"], "description": "The record at fault, when it is not the one sent (a rule across records)."},
                "pointer": {"type": ["string", "null"], "description": "A JSON pointer to the value at fault in the request's body, such as /date_of_birth; null when the fault is in another record."},
                "field": {"type": "string"},
                "value": {"type": "string"},
                "reason": {"type": "string"},
            },
            "required": ["record", "pointer", "field", "value", "reason"],
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "properties": {
                "error": {"type": "string", "enum": ["unauthorised", "forbidden", "not_found", "bad_request", "conflict", "invalid", "idempotency_key_reused", "internal"]},
                "message": {"type": "string"},
                "problems": {"type": "array", "items": reference("Problem")},
            },
            "required": ["error", "message", "problems"],
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "Report".into(),
        json!({
            "type": "object",
            "description": "A report document, as `dcrs report --format json` writes it: scope, period, policy, warnings and sections of tables with their definitions. Suppressed figures are \"*\".",
            "properties": {
                "title": {"type": "string"},
                "kind": {"type": "string"},
                "synthetic": {"type": "boolean"},
                "scope": {"type": "object"},
                "period": {"type": "object"},
                "produced_at": {"type": "string"},
                "imd_year": {"type": "integer"},
                "reference_data": {"type": "array"},
                "policy": {"type": "object"},
                "warnings": {"type": "array", "items": {"type": "string"}},
                "sections": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["title", "kind", "scope", "period", "produced_at", "policy", "warnings", "sections"],
        }),
    );
    schemas.insert(
        "Documents".into(),
        json!({
            "type": "object",
            "properties": {"documents": {"type": "array", "items": reference("Report")}},
            "required": ["documents"],
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "TokenInfo".into(),
        json!({
            "type": "object",
            "properties": {
                "username": {"type": "string"},
                "role": {"type": "string", "enum": ["health_trainer", "service_manager", "commissioner", "analyst", "admin"]},
                "token": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "access": {"type": "string", "enum": ["read", "write"]},
                        "services": {"type": ["array", "null"], "items": {"type": "string"}},
                        "expires_at": {"type": "string"},
                    },
                    "required": ["id", "name", "access", "services", "expires_at"],
                },
            },
            "required": ["username", "role", "token"],
        }),
    );
    let mut paths = Map::new();
    for e in Entity::ALL {
        let name = schema_name(e);
        let (stored, input) = entity_schemas(e);
        schemas.insert(name.clone(), stored);
        schemas.insert(format!("{name}Update"), update_schema(e, &input));
        schemas.insert(format!("{name}Input"), input);
        schemas.insert(
            format!("{name}Written"),
            json!({
                "type": "object",
                "properties": {
                    "record": reference(&name),
                    "warnings": {"type": "array", "items": reference("Problem"), "description": "Accepted, but worth a look (an unknown postcode, an unusual measurement)."},
                },
                "required": ["record", "warnings"],
                "additionalProperties": false,
            }),
        );
        entity_paths(e, &mut paths);
    }
    paths.insert(
        "/api/v1/reports/{kind}".into(),
        json!({"get": {
            "operationId": "getReport",
            "tags": ["reports"],
            "summary": "A report, or the whole pack",
            "description": "For the services the token may see reports of. Figures are disclosure-controlled unless every service is the caller's own as its manager. Every release is audited.",
            "parameters": [
                {"name": "kind", "in": "path", "required": true, "schema": {"type": "string", "enum": KINDS}},
                query_param("services", "Service references, separated by commas; all the token may see when left out.", json!({"type": "string"})),
                query_param("period", "A financial year (2010-11), a quarter (2010-11Q3) or, for exact figures only, a range FROM..TO; the latest year with referrals when left out.", json!({"type": "string"})),
                query_param("each_service", "Also one document per service.", json!({"type": "boolean"})),
            ],
            "responses": {
                "200": ok("The documents.", reference("Documents")),
                "400": response("BadRequest"), "401": response("Unauthorised"),
                "403": response("Forbidden"), "404": response("NotFound"),
            },
        }}),
    );
    paths.insert(
        "/api/v1/patterns".into(),
        json!({"get": {
            "operationId": "getPatterns",
            "tags": ["reports"],
            "summary": "Implementation patterns, quarter by quarter",
            "description": "For analysts and service managers. Disclosure-controlled and audited as reports are.",
            "parameters": [
                query_param("services", "Service references, separated by commas; all the token may see when left out.", json!({"type": "string"})),
            ],
            "responses": {
                "200": ok("The document.", reference("Documents")),
                "400": response("BadRequest"), "401": response("Unauthorised"),
                "403": response("Forbidden"), "404": response("NotFound"),
            },
        }}),
    );
    paths.insert(
        "/api/v1/fhir/services/{service}/clients/{client}".into(),
        json!({"get": {
            "operationId": "getClientFhir",
            "tags": ["fhir"],
            "summary": "A client's records as one FHIR R4 Bundle",
            "description": "Patient, EpisodeOfCare, ServiceRequest, Encounter, Observation, CarePlan and Goal resources, UK Core conventions. Audited as a read of the client.",
            "parameters": [
                path_param("service", "The service's reference."),
                path_param("client", "The client's reference."),
            ],
            "responses": {
                "200": {"description": "The bundle.", "content": {"application/fhir+json": {"schema": {
                    "type": "object",
                    "properties": {
                        "resourceType": {"const": "Bundle"},
                        "id": {"type": "string"},
                        "type": {"const": "collection"},
                        "entry": {"type": "array", "items": {"type": "object", "required": ["fullUrl", "resource"]}},
                    },
                    "required": ["resourceType", "id", "type", "entry"],
                }}}},
                "401": response("Unauthorised"), "403": response("Forbidden"), "404": response("NotFound"),
            },
        }}),
    );
    paths.insert(
        "/api/v1/token".into(),
        json!({"get": {
            "operationId": "getToken",
            "tags": ["tokens"],
            "summary": "The token in use and the account it acts as",
            "responses": {
                "200": ok("The token.", reference("TokenInfo")),
                "401": response("Unauthorised"),
            },
        }}),
    );
    let error = |description: &str| ok(description, reference("Error"));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dcrs: health trainer services data API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Records, reports and implementation patterns of peer-led health trainer services. \
                Every request carries an access token made on the \"API access tokens\" page, in the header \
                `Authorization: Bearer …`. A token acts as its maker, never beyond their role and services. \
                See docs/api.md.",
        },
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "An access token (dcrs_…)."}},
            "schemas": schemas,
            "responses": {
                "BadRequest": error("A parameter or the body could not be read."),
                "Unauthorised": error("No live token."),
                "Forbidden": error("The token may not do this (it only reads, or is narrowed to other services)."),
                "NotFound": error("Nothing here, or nothing this token may see."),
                "Conflict": error("A record with this reference exists already."),
                "Invalid": error("The record breaks the dataset's rules, or the Idempotency-Key was sent before with another request; nothing was saved."),
            },
        },
        "paths": paths,
    })
}
