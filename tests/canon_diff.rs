//! Canonicalisation and diff (§6.2–6.6) through the public API: every rule that
//! keeps false positives out, and the seed's property (the drift list is exactly
//! the fields whose canonical values differ).

use config_drift_detector::canon::canonical::{CanonOptions, Canonical, canonicalise};
use config_drift_detector::canon::parse::parse_json_value;
use config_drift_detector::canon::path::FieldPattern;
use config_drift_detector::canon::schema::{Schema, SchemaCompileError};
use config_drift_detector::canon::secret::SecretKey;
use config_drift_detector::canon::{Decimal, Map, Value};
use config_drift_detector::diff::{DiffOptions, DiffOutcome, diff};
use config_drift_detector::report::{DriftKind, Side};

fn j(text: &str) -> Value {
    parse_json_value(text.as_bytes()).expect("test JSON parses")
}

fn key() -> SecretKey {
    SecretKey::from_bytes([7; 32])
}

fn compile(text: &str) -> Schema {
    Schema::compile(&j(text)).expect("test schema compiles")
}

fn canon(doc: &str, schema: Option<&Schema>, side: Side, ignore: &[&str]) -> Canonical {
    let patterns: Vec<FieldPattern> = ignore
        .iter()
        .map(|p| FieldPattern::parse(p).expect("pattern parses"))
        .collect();
    let k = key();
    let opts = CanonOptions {
        ignore_fields: &patterns,
        secret_key: &k,
    };
    canonicalise(j(doc), schema, side, &opts)
}

fn run_full(
    running: &str,
    committed: &str,
    schema_text: Option<&str>,
    ignore: &[&str],
    tolerance: &str,
) -> DiffOutcome {
    let s = schema_text.map(compile);
    let r = canon(running, s.as_ref(), Side::Running, ignore);
    let c = canon(committed, s.as_ref(), Side::Committed, ignore);
    diff(
        &r,
        &c,
        &DiffOptions {
            tolerance: Decimal::parse(tolerance).expect("tolerance parses"),
        },
    )
}

fn run(running: &str, committed: &str, schema_text: Option<&str>) -> DiffOutcome {
    run_full(running, committed, schema_text, &[], "0")
}

/// `(path, kind, running, committed, delta)` per drift.
type Row = (
    String,
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn rows(outcome: &DiffOutcome) -> Vec<Row> {
    outcome
        .drifts
        .iter()
        .map(|d| {
            (
                d.path.to_string(),
                d.kind.as_str(),
                d.running.clone(),
                d.committed.clone(),
                d.delta.clone(),
            )
        })
        .collect()
}

fn paths(outcome: &DiffOutcome) -> Vec<String> {
    outcome.drifts.iter().map(|d| d.path.to_string()).collect()
}

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

// ---------------------------------------------------------------- the seed's unit tests

#[test]
fn identical_configs_report_no_drift() {
    let doc = r#"{"intraday_drawdown_pct": 12, "mode": "strict", "limits": {"max_usd": 2500.5, "venues": ["a", "b"]}, "paused": false, "note": null}"#;
    let outcome = run(doc, doc, None);
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    assert_eq!(outcome.ignored, 0);
    assert!(outcome.schema_errors.is_empty());
}

#[test]
fn one_numeric_field_changed_by_one_reports_the_drift_exactly() {
    let committed =
        r#"{"intraday_drawdown_pct": 12, "mode": "strict", "limits": {"max_usd": 100}}"#;
    let running = r#"{"intraday_drawdown_pct": 11, "mode": "strict", "limits": {"max_usd": 100}}"#;
    assert_eq!(
        rows(&run(running, committed, None)),
        vec![(
            "intraday_drawdown_pct".into(),
            "changed",
            s("11"),
            s("12"),
            s("-1")
        )]
    );
    let running = r#"{"intraday_drawdown_pct": 12, "mode": "strict", "limits": {"max_usd": 101}}"#;
    assert_eq!(
        rows(&run(running, committed, None)),
        vec![(
            "limits.max_usd".into(),
            "changed",
            s("101"),
            s("100"),
            s("1")
        )]
    );
}

// ---------------------------------------------------------------- §6.1, §6.3, §6.4 basics

#[test]
fn worked_example_empty_object_against_a_filled_one() {
    assert_eq!(
        rows(&run(r#"{"limits": {}}"#, r#"{"limits": {"a": 1}}"#, None)),
        vec![
            ("limits".into(), "missing_in_committed", s("{}"), None, None),
            ("limits.a".into(), "missing_in_running", None, s("1"), None),
        ]
    );
}

#[test]
fn integers_written_as_floats_or_exponents_do_not_drift() {
    assert!(
        run(r#"{"n": 10}"#, r#"{"n": 10.0}"#, None)
            .drifts
            .is_empty()
    );
    assert!(run(r#"{"n": 10}"#, r#"{"n": 1e1}"#, None).drifts.is_empty());
    assert!(run(r#"{"n": -0}"#, r#"{"n": 0}"#, None).drifts.is_empty());
}

#[test]
fn numbers_beyond_two_to_the_53_compare_exactly() {
    let doc = |n: &str| {
        Value::Object(
            Map::from_entries(vec![(
                "n".into(),
                Value::Number(Decimal::parse(n).expect("number")),
            )])
            .expect("map"),
        )
    };
    let k = key();
    let opts = CanonOptions {
        ignore_fields: &[],
        secret_key: &k,
    };
    let r = canonicalise(doc("9007199254740993"), None, Side::Running, &opts);
    let c = canonicalise(doc("9007199254740992"), None, Side::Committed, &opts);
    let outcome = diff(&r, &c, &DiffOptions::default());
    assert_eq!(
        rows(&outcome),
        vec![(
            "n".into(),
            "changed",
            s("9007199254740993"),
            s("9007199254740992"),
            s("1")
        )]
    );
    let r = canonicalise(doc("0.30000000000000004"), None, Side::Running, &opts);
    let c = canonicalise(doc("0.3"), None, Side::Committed, &opts);
    assert_eq!(
        diff(&r, &c, &DiffOptions::default()).drifts[0].delta,
        s("0.00000000000000004")
    );
}

#[test]
fn key_order_never_matters() {
    assert!(
        run(
            r#"{"a": 1, "b": {"x": true, "y": [1, 2]}}"#,
            r#"{"b": {"y": [1, 2], "x": true}, "a": 1}"#,
            None
        )
        .drifts
        .is_empty()
    );
}

#[test]
fn null_is_a_value_distinct_from_absent() {
    assert_eq!(
        rows(&run(r#"{"a": null}"#, r#"{}"#, None)),
        vec![("a".into(), "missing_in_committed", s("null"), None, None)]
    );
    assert_eq!(
        rows(&run(r#"{"a": null}"#, r#"{"a": 0}"#, None)),
        vec![("a".into(), "changed", s("null"), s("0"), None)]
    );
}

#[test]
fn strings_booleans_and_types_compare_strictly() {
    assert_eq!(
        rows(&run(r#"{"a": "1"}"#, r#"{"a": 1}"#, None)),
        vec![("a".into(), "changed", s("\"1\""), s("1"), None)]
    );
    assert_eq!(
        paths(&run(r#"{"a": "On"}"#, r#"{"a": "on"}"#, None)),
        vec!["a"]
    );
    assert_eq!(
        paths(&run(r#"{"a": true}"#, r#"{"a": "true"}"#, None)),
        vec!["a"]
    );
    assert_eq!(paths(&run(r#"{"a": []}"#, r#"{"a": {}}"#, None)), vec!["a"]);
}

#[test]
fn the_root_is_never_a_leaf() {
    assert!(run("{}", "{}", None).drifts.is_empty());
    assert_eq!(paths(&run("{}", r#"{"a": 1}"#, None)), vec!["a"]);
}

#[test]
fn tolerance_applies_to_numbers_in_exact_arithmetic() {
    let within = run_full(r#"{"x": 1.0005}"#, r#"{"x": 1}"#, None, &[], "0.001");
    assert!(within.drifts.is_empty());
    let at = run_full(r#"{"x": 1.001}"#, r#"{"x": 1}"#, None, &[], "0.001");
    assert!(
        at.drifts.is_empty(),
        "equal to the tolerance is not beyond it"
    );
    let beyond = run_full(r#"{"x": 0.9989}"#, r#"{"x": 1}"#, None, &[], "0.001");
    assert_eq!(
        rows(&beyond),
        vec![("x".into(), "changed", s("0.9989"), s("1"), s("-0.0011"))]
    );
    let strict = run(r#"{"x": 1.0005}"#, r#"{"x": 1}"#, None);
    assert_eq!(paths(&strict), vec!["x"]);
}

#[test]
fn drifts_are_in_contract_path_order() {
    let outcome = run(
        r#"{"a": {"z": 1, "b.c": 1, "list": [0,0,0,0,0,0,0,0,0,0,0]}}"#,
        r#"{"a": {"z": 2, "b.c": 2, "list": [0,0,1,0,0,0,0,0,0,0,1]}}"#,
        None,
    );
    assert_eq!(
        paths(&outcome),
        vec![r#"a["b.c"]"#, "a.list[2]", "a.list[10]", "a.z"]
    );
}

// ---------------------------------------------------------------- sets

const TAGS_SET: &str = r#"{"properties": {"tags": {"type": "array", "uniqueItems": true}}}"#;

#[test]
fn worked_example_unique_items_tags() {
    let outcome = run(
        r#"{"tags": ["a", "b"]}"#,
        r#"{"tags": ["b", "c"]}"#,
        Some(TAGS_SET),
    );
    assert_eq!(
        rows(&outcome),
        vec![
            (
                r#"tags[="a"]"#.into(),
                "missing_in_committed",
                s("\"a\""),
                None,
                None
            ),
            (
                r#"tags[="c"]"#.into(),
                "missing_in_running",
                None,
                s("\"c\""),
                None
            ),
        ]
    );
    assert!(
        run(
            r#"{"tags": ["a", "b"]}"#,
            r#"{"tags": ["b", "a"]}"#,
            Some(TAGS_SET)
        )
        .drifts
        .is_empty(),
        "set order never matters"
    );
}

#[test]
fn duplicate_set_members_collapse_with_a_schema_error() {
    let outcome = run(
        r#"{"tags": ["a", "b", "a"]}"#,
        r#"{"tags": ["b", "a"]}"#,
        Some(TAGS_SET),
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    let errors: Vec<_> = outcome
        .schema_errors
        .iter()
        .filter(|e| e.path == "tags")
        .collect();
    assert_eq!(errors.len(), 1, "{:?}", outcome.schema_errors);
    assert_eq!(errors[0].side, Side::Running);
}

#[test]
fn members_equal_only_once_canonical_collapse_with_our_own_schema_error() {
    let schema = r#"{"properties": {"legs": {"uniqueItems": true,
        "items": {"properties": {"w": {"default": 1}}}}}}"#;
    let outcome = run(
        r#"{"legs": [{"v": "x"}, {"v": "x", "w": 1}]}"#,
        r#"{"legs": [{"v": "x", "w": 1}]}"#,
        Some(schema),
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    assert_eq!(
        outcome.schema_errors.len(),
        1,
        "{:?}",
        outcome.schema_errors
    );
    let e = &outcome.schema_errors[0];
    assert_eq!((e.side, e.path.as_str()), (Side::Running, "legs"));
    assert!(e.message.contains(r#"{"v":"x","w":1}"#), "{}", e.message);
}

#[test]
fn tolerance_never_applies_to_set_members() {
    let outcome = run_full(
        r#"{"tags": [1.0001]}"#,
        r#"{"tags": [1]}"#,
        Some(TAGS_SET),
        &[],
        "0.001",
    );
    assert_eq!(paths(&outcome), vec!["tags[=1]", "tags[=1.0001]"]);
}

#[test]
fn set_members_are_canonical_json_with_defaults_filled() {
    let schema = r#"{"properties": {"legs": {"uniqueItems": true,
        "items": {"properties": {"venue": {"type": "string"}, "w": {"default": 1}}}}}}"#;
    let outcome = run(
        r#"{"legs": [{"venue": "x"}]}"#,
        r#"{"legs": [{"w": 1.0, "venue": "x"}]}"#,
        Some(schema),
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    let outcome = run(
        r#"{"legs": [{"venue": "x"}]}"#,
        r#"{"legs": []}"#,
        Some(schema),
    );
    assert_eq!(
        rows(&outcome),
        vec![
            ("legs".into(), "missing_in_running", None, s("[]"), None),
            (
                r#"legs[={"venue":"x","w":1}]"#.into(),
                "missing_in_committed",
                s(r#"{"venue":"x","w":1}"#),
                None,
                None
            ),
        ]
    );
}

// ---------------------------------------------------------------- keyed arrays

const MARKETS: &str = r#"{"properties": {"per_market": {"type": "array", "x-drift-key": "id",
    "uniqueItems": true,
    "items": {"type": "object", "properties": {"id": {}, "max_usd": {"type": "number"}}}}}}"#;

#[test]
fn keyed_arrays_match_items_by_key_not_position() {
    let outcome = run(
        r#"{"per_market": [{"id": "m1", "max_usd": 10}, {"id": "m2", "max_usd": 25}]}"#,
        r#"{"per_market": [{"id": "m2", "max_usd": 20}, {"id": "m1", "max_usd": 10}]}"#,
        Some(MARKETS),
    );
    assert_eq!(
        rows(&outcome),
        vec![(
            r#"per_market[id="m2"].max_usd"#.into(),
            "changed",
            s("25"),
            s("20"),
            s("5")
        )]
    );
    assert!(
        outcome.schema_errors.is_empty(),
        "{:?}",
        outcome.schema_errors
    );
}

#[test]
fn an_item_on_one_side_only_reports_each_of_its_leaves() {
    let outcome = run(
        r#"{"per_market": [{"id": 7, "max_usd": 10}]}"#,
        r#"{"per_market": [{"id": 7, "max_usd": 10}, {"id": 8, "max_usd": 1, "extra": {"x": true}}]}"#,
        Some(MARKETS),
    );
    assert_eq!(
        rows(&outcome),
        vec![
            (
                "per_market[id=8].extra.x".into(),
                "missing_in_running",
                None,
                s("true"),
                None
            ),
            (
                "per_market[id=8].id".into(),
                "missing_in_running",
                None,
                s("8"),
                None
            ),
            (
                "per_market[id=8].max_usd".into(),
                "missing_in_running",
                None,
                s("1"),
                None
            ),
        ]
    );
}

#[test]
fn a_missing_key_makes_both_sides_compare_by_position_with_a_schema_error() {
    let outcome = run(
        r#"{"per_market": [{"id": "m2", "max_usd": 20}, {"id": "m1", "max_usd": 10}]}"#,
        r#"{"per_market": [{"id": "m1", "max_usd": 10}, {"max_usd": 20}]}"#,
        Some(MARKETS),
    );
    assert_eq!(
        rows(&outcome),
        vec![
            (
                "per_market[0].id".into(),
                "changed",
                s("\"m2\""),
                s("\"m1\""),
                None
            ),
            (
                "per_market[0].max_usd".into(),
                "changed",
                s("20"),
                s("10"),
                s("10")
            ),
            (
                "per_market[1].id".into(),
                "missing_in_committed",
                s("\"m1\""),
                None,
                None
            ),
            (
                "per_market[1].max_usd".into(),
                "changed",
                s("10"),
                s("20"),
                s("-10")
            ),
        ]
    );
    assert_eq!(
        outcome.schema_errors.len(),
        1,
        "{:?}",
        outcome.schema_errors
    );
    assert_eq!(outcome.schema_errors[0].side, Side::Committed);
    assert_eq!(outcome.schema_errors[0].path, "per_market");
    assert!(
        outcome.schema_errors[0]
            .message
            .contains("item 1 has no `id`")
    );
}

#[test]
fn a_repeated_key_makes_both_sides_compare_by_position_with_a_schema_error() {
    let outcome = run(
        r#"{"per_market": [{"id": "m1", "max_usd": 1}, {"id": "m1", "max_usd": 2}]}"#,
        r#"{"per_market": [{"id": "m1", "max_usd": 1}, {"id": "m2", "max_usd": 2}]}"#,
        Some(MARKETS),
    );
    assert_eq!(
        rows(&outcome),
        vec![(
            "per_market[1].id".into(),
            "changed",
            s("\"m1\""),
            s("\"m2\""),
            None
        )]
    );
    let errors: Vec<_> = outcome
        .schema_errors
        .iter()
        .filter(|e| e.message.contains("x-drift-key"))
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].side, Side::Running);
    assert!(
        errors[0].message.contains(r#"share the `id` value "m1""#),
        "{}",
        errors[0].message
    );
}

#[test]
fn x_drift_key_wins_over_unique_items() {
    // MARKETS has both; with uniqueItems winning this would be two members.
    let outcome = run(
        r#"{"per_market": [{"id": "m1", "max_usd": 2}]}"#,
        r#"{"per_market": [{"id": "m1", "max_usd": 1}]}"#,
        Some(MARKETS),
    );
    assert_eq!(paths(&outcome), vec![r#"per_market[id="m1"].max_usd"#]);
}

#[test]
fn nested_keyed_arrays_fall_back_only_where_broken() {
    let schema = r#"{"properties": {"books": {"x-drift-key": "id", "items": {"properties": {
        "legs": {"x-drift-key": "leg", "items": {"type": "object"}}}}}}}"#;
    let outcome = run(
        r#"{"books": [{"id": 1, "legs": [{"leg": "a", "q": 1}, {"leg": "b", "q": 2}]}]}"#,
        r#"{"books": [{"id": 1, "legs": [{"leg": "b", "q": 2}, {"q": 3}]}]}"#,
        Some(schema),
    );
    assert_eq!(
        paths(&outcome),
        vec![
            "books[id=1].legs[0].leg",
            "books[id=1].legs[0].q",
            "books[id=1].legs[1].leg",
            "books[id=1].legs[1].q"
        ]
    );
}

#[test]
fn sides_shaped_by_different_schemas_still_line_up_arrays_by_position() {
    let keyed = compile(MARKETS);
    let r = canon(
        r#"{"per_market": [{"id": "m1", "max_usd": 1}, {"id": "m2", "max_usd": 2}]}"#,
        Some(&keyed),
        Side::Running,
        &[],
    );
    let c = canon(
        r#"{"per_market": [{"id": "m1", "max_usd": 1}, {"id": "m2", "max_usd": 3}]}"#,
        None,
        Side::Committed,
        &[],
    );
    assert_eq!(
        paths(&diff(&r, &c, &DiffOptions::default())),
        vec!["per_market[1].max_usd"]
    );
}

// ---------------------------------------------------------------- defaults

#[test]
fn an_omitted_field_whose_default_equals_the_committed_value_is_no_drift() {
    let schema = r#"{"properties": {"max_usd": {"type": "number", "default": 100},
                                     "mode": {"default": "strict"}}}"#;
    let outcome = run(
        r#"{}"#,
        r#"{"max_usd": 100.0, "mode": "strict"}"#,
        Some(schema),
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    let outcome = run(
        r#"{}"#,
        r#"{"max_usd": 150, "mode": "strict"}"#,
        Some(schema),
    );
    assert_eq!(
        rows(&outcome),
        vec![("max_usd".into(), "changed", s("100"), s("150"), s("-50"))]
    );
}

#[test]
fn defaults_fill_at_any_depth_inside_array_items_and_complete_filled_objects() {
    let schema = r#"{"properties": {
        "limits": {"default": {}, "properties": {"max_usd": {"default": 5}, "inner": {"default": {"a": 1}, "properties": {"b": {"default": 2}}}}},
        "legs": {"items": {"properties": {"w": {"default": 1}}}},
        "absent_parent": {"properties": {"x": {"default": 1}}}}}"#;
    let s = compile(schema);
    let c = canon(r#"{"legs": [{}, {"w": 3}]}"#, Some(&s), Side::Running, &[]);
    assert_eq!(
        c.redacted_canonical_json(),
        r#"{"legs":[{"w":1},{"w":3}],"limits":{"inner":{"a":1,"b":2},"max_usd":5}}"#
    );
}

#[test]
fn defaults_fill_through_additional_properties() {
    let schema = r#"{"properties": {"venues": {"additionalProperties": {"properties": {"w": {"default": 1}}}}}}"#;
    let outcome = run(
        r#"{"venues": {"a": {}, "b": {"w": 2}}}"#,
        r#"{"venues": {"a": {"w": 1}, "b": {"w": 2}}}"#,
        Some(schema),
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
}

#[test]
fn a_recursive_schema_with_defaults_terminates_after_32_hops() {
    let s = compile(r##"{"properties": {"child": {"$ref": "#", "default": {}}}}"##);
    let c = canon("{}", Some(&s), Side::Running, &[]);
    let json = c.redacted_canonical_json();
    assert_eq!(json.matches("child").count(), 32, "{json}");
}

#[test]
fn defaults_follow_refs_and_all_of_with_the_later_and_the_sibling_winning() {
    let schema = r##"{"$defs": {"usd": {"type": "number", "default": 1}},
        "properties": {
            "a": {"$ref": "#/$defs/usd"},
            "b": {"$ref": "#/$defs/usd", "default": 2},
            "c": {"allOf": [{"default": 3}, {"default": 4}]},
            "d": {"allOf": [{"properties": {"x": {"default": 5}}}, {"properties": {"y": {"default": 6}}}], "default": {}}
        }}"##;
    let s = compile(schema);
    let c = canon("{}", Some(&s), Side::Running, &[]);
    assert_eq!(
        c.redacted_canonical_json(),
        r#"{"a":1,"b":2,"c":4,"d":{"x":5,"y":6}}"#
    );
}

#[test]
fn keywords_outside_the_followed_set_are_not_canonicalised() {
    // anyOf, oneOf, if/then and patternProperties may describe alternatives: a
    // default there is not a value the bot is known to run with.
    let schema = r#"{"anyOf": [{"properties": {"a": {"default": 1}}}],
        "oneOf": [{"properties": {"b": {"default": 1}}}],
        "if": true, "then": {"properties": {"c": {"default": 1}}},
        "patternProperties": {"^d": {"properties": {"z": {"default": 1}}}},
        "properties": {"e": {"prefixItems": [{"properties": {"z": {"default": 1}}}]}}}"#;
    let c = canon(
        r#"{"e": [{}], "d1": {}}"#,
        Some(&compile(schema)),
        Side::Running,
        &[],
    );
    assert_eq!(c.redacted_canonical_json(), r#"{"d1":{},"e":[{}]}"#);
}

#[test]
fn refs_resolve_json_pointer_escapes_and_definitions() {
    let schema = r##"{"definitions": {"a/b": {"default": 1}, "t~x": {"default": 2}},
        "properties": {"p": {"$ref": "#/definitions/a~1b"}, "q": {"$ref": "#/definitions/t~0x"}}}"##;
    let c = canon("{}", Some(&compile(schema)), Side::Running, &[]);
    assert_eq!(c.redacted_canonical_json(), r#"{"p":1,"q":2}"#);
}

#[test]
fn a_ref_cycle_never_hangs() {
    let schema = r##"{"$defs": {"a": {"$ref": "#/$defs/b", "default": 1}, "b": {"$ref": "#/$defs/a"}},
        "properties": {"x": {"$ref": "#/$defs/a"}}}"##;
    let s = Schema::compile(&j(schema)).expect("a cycle of references is still a schema");
    let c = canon(r#"{"y": {}}"#, Some(&s), Side::Running, &[]);
    assert_eq!(c.redacted_canonical_json(), r#"{"x":1,"y":{}}"#);
}

// ---------------------------------------------------------------- ignored

#[test]
fn x_drift_ignore_skips_the_field_on_both_sides_present_or_absent() {
    let schema = r#"{"properties": {"runtime": {"x-drift-ignore": true}, "n": {}}}"#;
    let outcome = run(
        r#"{"runtime": {"started_at": 5, "pid": 9}, "n": 1}"#,
        r#"{"n": 1}"#,
        Some(schema),
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    assert_eq!(outcome.ignored, 2);
    let outcome = run(
        r#"{"runtime": {"started_at": 5}}"#,
        r#"{"runtime": {"started_at": 6}}"#,
        Some(schema),
    );
    assert!(outcome.drifts.is_empty());
    assert_eq!(
        outcome.ignored, 1,
        "the same path on both sides counts once"
    );
}

#[test]
fn x_drift_ignore_beside_a_ref_applies_there_only() {
    let schema = r##"{"$defs": {"ts": {"type": "integer"}},
        "properties": {"started_at": {"$ref": "#/$defs/ts", "x-drift-ignore": true},
                       "deadline": {"$ref": "#/$defs/ts"}}}"##;
    let outcome = run(
        r#"{"started_at": 1, "deadline": 1}"#,
        r#"{"started_at": 2, "deadline": 2}"#,
        Some(schema),
    );
    assert_eq!(paths(&outcome), vec!["deadline"]);
    assert_eq!(outcome.ignored, 1);
}

#[test]
fn ignore_fields_patterns_cover_subtrees_and_wildcards() {
    let outcome = run_full(
        r#"{"runtime": {"started_at": 1}, "per_market": [{"updated_at": 1, "v": 1}, {"updated_at": 5, "v": 2}]}"#,
        r#"{"runtime": {"started_at": 2}, "per_market": [{"updated_at": 2, "v": 1}, {"updated_at": 6, "v": 3}]}"#,
        None,
        &["runtime", "per_market[*].updated_at"],
        "0",
    );
    assert_eq!(paths(&outcome), vec!["per_market[1].v"]);
    assert_eq!(outcome.ignored, 3);
}

#[test]
fn ignored_subtrees_are_removed_before_flattening() {
    let outcome = run_full(r#"{"a": {"b": 1}}"#, r#"{"a": {}}"#, None, &["a.b"], "0");
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    assert_eq!(outcome.ignored, 1);
}

#[test]
fn ignore_patterns_can_name_keyed_items_and_set_members() {
    let outcome = run_full(
        r#"{"per_market": [{"id": "m1", "max_usd": 1}, {"id": "m2", "max_usd": 1}], "tags": ["a", "x"]}"#,
        r#"{"per_market": [{"id": "m1", "max_usd": 1}, {"id": "m2", "max_usd": 2}], "tags": ["a"]}"#,
        Some(
            r#"{"properties": {"per_market": {"x-drift-key": "id"}, "tags": {"uniqueItems": true}}}"#,
        ),
        &[r#"per_market[id="m2"]"#, r#"tags[="x"]"#],
        "0",
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
}

#[test]
fn a_parent_whose_children_are_all_ignored_is_not_a_leaf() {
    // The README's own `ignore_fields = ["runtime.started_at"]`.
    let outcome = run_full(
        r#"{"a": 1, "runtime": {"started_at": "2026-12-01T00:00:00Z"}}"#,
        r#"{"a": 1}"#,
        None,
        &["runtime.started_at"],
        "0",
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    assert_eq!(outcome.ignored, 1);
    // The same through `x-drift-ignore`, and on the committed side.
    let schema =
        r#"{"properties": {"runtime": {"properties": {"started_at": {"x-drift-ignore": true}}}}}"#;
    let outcome = run(
        r#"{"a": 1}"#,
        r#"{"a": 1, "runtime": {"started_at": 5}}"#,
        Some(schema),
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    // Nested: emptying `runtime` empties `x` too.
    let outcome = run_full(
        r#"{"x": {"runtime": {"started_at": 1}}}"#,
        "{}",
        None,
        &["x.runtime.started_at"],
        "0",
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    // Arrays: every item ignored.
    let outcome = run_full(r#"{"a": [1, 2]}"#, "{}", None, &["a[*]"], "0");
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    let outcome = run_full(
        r#"{"a": [{"t": 1}]}"#,
        r#"{"a": []}"#,
        None,
        &["a[*].t"],
        "0",
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
}

#[test]
fn a_container_that_is_really_empty_is_still_a_leaf() {
    let outcome = run_full(
        r#"{"a": 1, "runtime": {}}"#,
        r#"{"a": 1}"#,
        None,
        &["runtime.started_at"],
        "0",
    );
    assert_eq!(
        rows(&outcome),
        vec![(
            "runtime".into(),
            "missing_in_committed",
            s("{}"),
            None,
            None
        )]
    );
    // Emptied by ignore rules against really empty: nothing compared differs.
    let outcome = run_full(
        r#"{"runtime": {}}"#,
        r#"{"runtime": {"started_at": 1}}"#,
        None,
        &["runtime.started_at"],
        "0",
    );
    assert!(outcome.drifts.is_empty(), "{:?}", outcome.drifts);
    // ... but an emptied object is no empty array, and what is left still counts.
    let outcome = run_full(
        r#"{"runtime": {"started_at": 1}}"#,
        r#"{"runtime": []}"#,
        None,
        &["runtime.started_at"],
        "0",
    );
    assert_eq!(paths(&outcome), vec!["runtime"]);
    let outcome = run_full(
        r#"{"runtime": {"started_at": 1}}"#,
        r#"{"runtime": {"pid": 7}}"#,
        None,
        &["runtime.started_at"],
        "0",
    );
    assert_eq!(paths(&outcome), vec!["runtime.pid"]);
}

#[test]
fn an_ignored_field_with_a_default_is_not_filled() {
    let schema = r#"{"properties": {"a": {"default": 1, "x-drift-ignore": true}}}"#;
    let c = canon("{}", Some(&compile(schema)), Side::Running, &[]);
    assert_eq!(c.redacted_canonical_json(), "{}");
}

// ---------------------------------------------------------------- secrets

const SECRETS: &str = r#"{"properties": {
    "api_key": {"type": "string", "minLength": 12, "x-drift-secret": true},
    "password": {"type": "string", "writeOnly": true},
    "creds": {"x-drift-secret": true},
    "allow": {"uniqueItems": true, "items": {"x-drift-secret": true}},
    "accounts": {"x-drift-key": "token", "items": {"properties": {"token": {"x-drift-secret": true}}}},
    "n": {"type": "number", "x-drift-secret": true}}}"#;

fn assert_no_leak(outcome: &DiffOutcome, secrets: &[&str]) {
    let shown = format!("{:?} {:?}", outcome.drifts, outcome.schema_errors);
    let display: String = outcome.drifts.iter().map(|d| d.path.to_string()).collect();
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        assert!(!display.contains(secret), "{secret} leaked: {display}");
    }
}

#[test]
fn secrets_are_compared_by_value_but_shown_only_as_tokens() {
    let k = key();
    let outcome = run(
        r#"{"api_key": "hunter2-running", "password": "pw-one", "n": 5}"#,
        r#"{"api_key": "hunter2-committed", "password": "pw-one", "n": 7}"#,
        Some(SECRETS),
    );
    let token = |json: &str| format!("\"{}\"", k.token(json));
    assert_eq!(
        rows(&outcome),
        vec![
            (
                "api_key".into(),
                "changed",
                Some(token("\"hunter2-running\"")),
                Some(token("\"hunter2-committed\"")),
                None
            ),
            (
                "n".into(),
                "changed",
                Some(token("5")),
                Some(token("7")),
                None
            ),
        ]
    );
    assert_no_leak(&outcome, &["hunter2", "pw-one"]);
    assert!(
        run(
            r#"{"password": "same"}"#,
            r#"{"password": "same"}"#,
            Some(SECRETS)
        )
        .drifts
        .is_empty()
    );
    assert_eq!(
        paths(&run(
            r#"{"password": "a"}"#,
            r#"{"password": "b"}"#,
            Some(SECRETS)
        )),
        vec!["password"],
        "writeOnly is a secret that is still compared"
    );
}

#[test]
fn everything_below_a_secret_is_secret() {
    let outcome = run(
        r#"{"creds": {"user": "alice", "pass": "s3cr3t-r", "empty": {}}}"#,
        r#"{"creds": {"user": "alice", "pass": "s3cr3t-c"}}"#,
        Some(SECRETS),
    );
    assert_eq!(paths(&outcome), vec!["creds.empty", "creds.pass"]);
    assert_no_leak(&outcome, &["s3cr3t"]);
    for d in &outcome.drifts {
        let v = d.running.as_deref().unwrap_or_default();
        assert!(v.starts_with("\"<redacted:hmac-sha256:"), "{v}");
    }
}

#[test]
fn set_members_and_key_values_under_a_secret_are_redacted_in_paths() {
    let outcome = run(
        r#"{"allow": ["10.0.0.1-secret"], "accounts": [{"token": "tok-AAA", "limit": 1}]}"#,
        r#"{"allow": ["10.0.0.2-secret"], "accounts": [{"token": "tok-AAA", "limit": 2}]}"#,
        Some(SECRETS),
    );
    assert_no_leak(&outcome, &["10.0.0", "tok-AAA"]);
    let p = paths(&outcome);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("accounts[token=\"<redacted:hmac-sha256:"),
        "{p:?}"
    );
    assert!(p[0].ends_with("\"].limit"), "{p:?}");
    assert!(p[1].starts_with("allow[=\"<redacted:hmac-sha256:"), "{p:?}");
    assert_eq!(
        outcome.drifts[0].delta,
        s("-1"),
        "limit itself is not secret"
    );
}

#[test]
fn redacted_canonical_json_never_holds_a_secret() {
    let c = canon(
        r#"{"api_key": "hunter2-abcdef", "creds": {"pass": "xyz-pass"}, "allow": ["ip-secret"], "plain": 1}"#,
        Some(&compile(SECRETS)),
        Side::Running,
        &[],
    );
    let json = c.redacted_canonical_json();
    let debug = format!("{c:?}");
    for secret in ["hunter2", "xyz-pass", "ip-secret"] {
        assert!(!json.contains(secret), "{json}");
        assert!(!debug.contains(secret), "{debug}");
    }
    let k = key();
    assert!(json.contains(&k.token(r#"{"pass":"xyz-pass"}"#)), "{json}");
    assert!(json.contains(r#""plain":1"#));
}

#[test]
fn schema_error_messages_never_quote_a_secret() {
    let schema = r#"{"properties": {
        "api_key": {"type": "string", "minLength": 40, "pattern": "^sk-", "x-drift-secret": true},
        "creds": {"type": "object", "enum": [{"user": "x"}], "properties": {"pass": {"writeOnly": true, "maxLength": 2}}},
        "box": {"x-drift-secret": true, "additionalProperties": false, "properties": {"a": {}}}}}"#;
    let outcome = run(
        r#"{"api_key": "hunter2-value", "creds": {"user": "bob", "pass": "p4ssw0rd"}, "box": {"leaked-key-name": 1}}"#,
        "{}",
        Some(schema),
    );
    assert!(
        outcome.schema_errors.len() >= 4,
        "{:?}",
        outcome.schema_errors
    );
    assert_no_leak(&outcome, &["hunter2", "p4ssw0rd"]);
    // Key names are structure, not values: drift paths show them; the messages
    // about a secret still name nothing taken from it.
    let messages = format!("{:?}", outcome.schema_errors);
    assert!(!messages.contains("leaked-key-name"), "{messages}");
    assert!(
        outcome
            .schema_errors
            .iter()
            .all(|e| e.side == Side::Running)
    );
    let paths: Vec<&str> = outcome
        .schema_errors
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert!(
        paths.contains(&"api_key") && paths.contains(&"creds.pass") && paths.contains(&"creds")
    );
}

// ---------------------------------------------------------------- validation

#[test]
fn schema_errors_are_listed_per_side_in_our_path_syntax_and_never_stop_the_diff() {
    let schema = r#"{"type": "object", "properties": {
        "limits": {"properties": {"max_usd": {"type": "number", "maximum": 1000}}},
        "per_market": {"items": {"required": ["id"], "properties": {"id": {"type": "string"}}}},
        "odd key.x": {"type": "string"}}}"#;
    let outcome = run(
        r#"{"limits": {"max_usd": 5000}, "per_market": [{"id": 3}], "odd key.x": 1}"#,
        r#"{"limits": {"max_usd": 10}, "per_market": [{}]}"#,
        Some(schema),
    );
    let errors: Vec<(Side, &str)> = outcome
        .schema_errors
        .iter()
        .map(|e| (e.side, e.path.as_str()))
        .collect();
    assert!(
        errors.contains(&(Side::Running, "limits.max_usd")),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(Side::Running, "per_market[0].id")),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(Side::Running, r#"["odd key.x"]"#)),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(Side::Committed, "per_market[0]")),
        "{errors:?}"
    );
    let first_committed = errors
        .iter()
        .position(|e| e.0 == Side::Committed)
        .unwrap_or(0);
    assert!(
        errors[..first_committed]
            .iter()
            .all(|e| e.0 == Side::Running)
    );
    assert!(
        errors[first_committed..]
            .iter()
            .all(|e| e.0 == Side::Committed)
    );
    let max = outcome
        .schema_errors
        .iter()
        .find(|e| e.path == "limits.max_usd")
        .map(|e| e.message.as_str())
        .unwrap_or_default();
    assert!(max.contains("5000") && max.contains("1000"), "{max}");
    assert_eq!(
        paths(&outcome),
        vec![
            "limits.max_usd",
            r#"["odd key.x"]"#,
            "per_market[0]",
            "per_market[0].id"
        ]
    );
}

#[test]
fn validation_sees_the_document_before_defaults() {
    let schema = r#"{"required": ["mode"], "properties": {"mode": {"default": "strict"}}}"#;
    let outcome = run("{}", r#"{"mode": "strict"}"#, Some(schema));
    assert!(outcome.drifts.is_empty());
    assert_eq!(outcome.schema_errors.len(), 1);
    assert_eq!(outcome.schema_errors[0].side, Side::Running);
}

#[test]
fn draft_2020_12_unless_schema_says_otherwise() {
    // `prefixItems` is a 2020-12 keyword; draft-07 ignores it.
    let d7 = r#"{"$schema": "http://json-schema.org/draft-07/schema#",
                 "properties": {"xs": {"prefixItems": [{"type": "string"}]}}}"#;
    let plain = r#"{"properties": {"xs": {"prefixItems": [{"type": "string"}]}}}"#;
    assert!(
        run(r#"{"xs": [1]}"#, r#"{"xs": [1]}"#, Some(d7))
            .schema_errors
            .is_empty()
    );
    assert_eq!(
        run(r#"{"xs": [1]}"#, r#"{"xs": [1]}"#, Some(plain))
            .schema_errors
            .len(),
        2
    );
}

#[test]
fn schemas_that_cannot_compile_are_refused() {
    let bad = |text: &str| Schema::compile(&j(text)).expect_err(text);
    assert!(matches!(
        bad(r#"{"type": 5}"#),
        SchemaCompileError::Invalid(_)
    ));
    bad(r##"{"properties": {"a": {"$ref": "#/$defs/missing"}}}"##);
    bad(r#"{"properties": {"a": {"$ref": "https://example.com/remote.json"}}}"#);
    assert!(matches!(
        bad(r#"{"properties": {"a": {"x-drift-key": 3}}}"#),
        SchemaCompileError::BadDriftKey(_)
    ));
    for e in [bad(r#"{"type": 5}"#), bad(r##"{"$ref": "#/nope"}"##)] {
        let text = e.to_string();
        assert!(
            text.starts_with("the schema") && !text.contains('\n'),
            "{text}"
        );
    }
}

#[test]
fn one_compiled_schema_serves_many_documents_across_threads() {
    let s = std::sync::Arc::new(compile(MARKETS));
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let doc = format!(r#"{{"per_market": [{{"id": "m", "max_usd": {t}}}]}}"#);
                canon(&doc, Some(&s), Side::Running, &[]).leaf_count()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().ok(), Some(2));
    }
}

// ---------------------------------------------------------------- the seed's property

mod property {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// The schema every generated pair is canonicalised with: defaults at a few
    /// depths, nothing else, so the reference below can stay simple.
    const DEFAULTS: &str = r#"{"properties": {
        "limits": {"default": {}, "properties": {"max_usd": {"default": 100}, "mode": {"default": "safe"}}},
        "flag": {"default": true},
        "a": {"properties": {"b": {"default": 0}}}}}"#;

    /// Generated trees: the same few keys everywhere, so the two sides overlap.
    fn tree() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            (-3i64..4).prop_map(|n| serde_json::json!(n)),
            (-3i64..4).prop_map(|n| serde_json::json!(n as f64 + 0.5)),
            prop::sample::select(vec!["safe", "x", ""]).prop_map(|s| serde_json::json!(s)),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec!["limits", "max_usd", "mode", "flag", "a", "b", "c"]),
                    inner,
                    0..5
                )
                .prop_map(|m| serde_json::Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    fn root() -> impl Strategy<Value = serde_json::Value> {
        prop::collection::btree_map(
            prop::sample::select(vec!["limits", "max_usd", "mode", "flag", "a", "b", "c"]),
            tree(),
            0..6,
        )
        .prop_map(|m| {
            serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
    }

    /// JSON text with keys in a seed-driven order and integers sometimes written
    /// as `10.0` or `1e1`-style, so canonicalisation has work to do.
    fn write(v: &serde_json::Value, seed: &mut u64, out: &mut String) {
        let mut next = || {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *seed >> 33
        };
        match v {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) if next() % 3 == 0 => out.push_str(&format!("{i}.0")),
                Some(i) if next() % 3 == 0 => out.push_str(&format!("{}e-1", i * 10)),
                _ => out.push_str(&n.to_string()),
            },
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, seed, out);
                }
                out.push(']');
            }
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                for i in (1..entries.len()).rev() {
                    let r = next() as usize % (i + 1);
                    entries.swap(i, r);
                }
                out.push('{');
                for (i, (k, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    write(item, seed, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    /// Reference defaults: only `properties` and `default`, as in `DEFAULTS`.
    fn fill(v: &mut serde_json::Value, schema: &serde_json::Value) {
        let (Some(obj), Some(props)) = (v.as_object_mut(), schema["properties"].as_object()) else {
            return;
        };
        for (k, sub) in props {
            if let (false, Some(d)) = (obj.contains_key(k), sub.get("default")) {
                obj.insert(k.clone(), d.clone());
            }
        }
        for (k, child) in obj.iter_mut() {
            if let Some(sub) = props.get(k) {
                fill(child, sub);
            }
        }
    }

    /// A generated path segment, and an `ignore_fields` pattern segment.
    #[derive(Clone, Debug)]
    enum Seg {
        Key(String),
        Index(usize),
    }

    #[derive(Clone, Debug)]
    enum Pat {
        Key(&'static str),
        Index(usize),
        Any,
    }

    /// The patterns the ignore property draws from, as text and as segments.
    const PATTERNS: &[(&str, &[Pat])] = &[
        ("a", &[Pat::Key("a")]),
        ("a.b", &[Pat::Key("a"), Pat::Key("b")]),
        ("limits.mode", &[Pat::Key("limits"), Pat::Key("mode")]),
        ("limits.max_usd", &[Pat::Key("limits"), Pat::Key("max_usd")]),
        ("c[*]", &[Pat::Key("c"), Pat::Any]),
        ("b[*].c", &[Pat::Key("b"), Pat::Any, Pat::Key("c")]),
        ("c.a.b", &[Pat::Key("c"), Pat::Key("a"), Pat::Key("b")]),
        ("b[0]", &[Pat::Key("b"), Pat::Index(0)]),
        ("mode[*][*]", &[Pat::Key("mode"), Pat::Any, Pat::Any]),
        ("flag", &[Pat::Key("flag")]),
    ];

    fn covered(path: &[Seg], ignore: &[Vec<Pat>]) -> bool {
        ignore.iter().any(|pat| {
            pat.len() <= path.len()
                && pat.iter().zip(path).all(|(p, s)| match (p, s) {
                    (Pat::Any, _) => true,
                    (Pat::Key(a), Seg::Key(b)) => a == b,
                    (Pat::Index(a), Seg::Index(b)) => a == b,
                    _ => false,
                })
        })
    }

    /// Stands for an array item an ignore rule removed: the others keep their index.
    const REMOVED: &str = "\u{0}removed";

    fn shown_path(path: &[Seg]) -> String {
        let mut out = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// Reference ignore rules, applied to the default-filled tree: covered
    /// subtrees go, and so does every container they emptied, which is
    /// remembered as `(path, is_object)`.
    fn strip(
        v: &mut serde_json::Value,
        path: &mut Vec<Seg>,
        ignore: &[Vec<Pat>],
        emptied: &mut BTreeSet<(String, bool)>,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    path.push(Seg::Key(k.clone()));
                    let gone = covered(path, ignore) || {
                        let child = map.get_mut(&k).expect("key listed");
                        strip_child(child, path, ignore, emptied)
                    };
                    if gone {
                        map.remove(&k);
                    }
                    path.pop();
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(Seg::Index(i));
                    if covered(path, ignore) || strip_child(item, path, ignore, emptied) {
                        *item = serde_json::json!(REMOVED);
                    }
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// Strips `v`; true when it was a container with content and lost all of it.
    fn strip_child(
        v: &mut serde_json::Value,
        path: &mut Vec<Seg>,
        ignore: &[Vec<Pat>],
        emptied: &mut BTreeSet<(String, bool)>,
    ) -> bool {
        let had = match v {
            serde_json::Value::Object(m) => !m.is_empty(),
            serde_json::Value::Array(a) => !a.is_empty(),
            _ => false,
        };
        strip(v, path, ignore, emptied);
        let empty = match v {
            serde_json::Value::Object(m) => m.is_empty(),
            serde_json::Value::Array(a) => a.iter().all(|x| x.as_str() == Some(REMOVED)),
            _ => false,
        };
        if had && empty {
            emptied.insert((shown_path(path), v.is_object()));
        }
        had && empty
    }

    /// Reference flattener: display path → exact value text.
    fn flat(v: &serde_json::Value, path: &str, out: &mut BTreeMap<String, String>) {
        let key_path = |k: &str| {
            if path.is_empty() {
                k.to_owned()
            } else {
                format!("{path}.{k}")
            }
        };
        match v {
            serde_json::Value::Object(m) if m.is_empty() && !path.is_empty() => {
                out.insert(path.to_owned(), "{}".into());
            }
            serde_json::Value::Object(m) => {
                for (k, c) in m {
                    flat(c, &key_path(k), out);
                }
            }
            serde_json::Value::Array(a) if a.is_empty() => {
                out.insert(path.to_owned(), "[]".into());
            }
            serde_json::Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    if c.as_str() != Some(REMOVED) {
                        flat(c, &format!("{path}[{i}]"), out);
                    }
                }
            }
            serde_json::Value::Number(n) => {
                // Generated numbers are integers or halves: f64 is exact for them.
                let x = n.as_f64().unwrap_or_default();
                out.insert(path.to_owned(), format!("n:{x}"));
            }
            other => {
                out.insert(path.to_owned(), other.to_string());
            }
        }
    }

    fn expected(r: &serde_json::Value, c: &serde_json::Value) -> Vec<(String, DriftKind)> {
        expected_ignoring(r, c, &[])
    }

    /// The reference drift list with ignore rules: an empty container against
    /// one the rules emptied on the other side is no drift.
    fn expected_ignoring(
        r: &serde_json::Value,
        c: &serde_json::Value,
        ignore: &[Vec<Pat>],
    ) -> Vec<(String, DriftKind)> {
        let schema: serde_json::Value = serde_json::from_str(DEFAULTS).unwrap_or_default();
        let (mut r, mut c) = (r.clone(), c.clone());
        let (mut er, mut ec) = (BTreeSet::new(), BTreeSet::new());
        for (side, emptied) in [(&mut r, &mut er), (&mut c, &mut ec)] {
            fill(side, &schema);
            strip(side, &mut Vec::new(), ignore, emptied);
        }
        let (mut fr, mut fc) = (BTreeMap::new(), BTreeMap::new());
        flat(&r, "", &mut fr);
        flat(&c, "", &mut fc);
        let emptied_as = |emptied: &BTreeSet<(String, bool)>, p: &String, v: &String| {
            (v == "{}" && emptied.contains(&(p.clone(), true)))
                || (v == "[]" && emptied.contains(&(p.clone(), false)))
        };
        let mut out = Vec::new();
        for (p, v) in &fr {
            match fc.get(p) {
                None if emptied_as(&ec, p, v) => {}
                None => out.push((p.clone(), DriftKind::MissingInCommitted)),
                Some(w) if w != v => out.push((p.clone(), DriftKind::Changed)),
                Some(_) => {}
            }
        }
        for (p, v) in &fc {
            if !fr.contains_key(p) && !emptied_as(&er, p, v) {
                out.push((p.clone(), DriftKind::MissingInRunning));
            }
        }
        out.sort();
        out
    }

    /// Two sides that mostly agree: `committed` is `running` with a few edits.
    fn pair() -> impl Strategy<Value = (serde_json::Value, serde_json::Value)> {
        (
            root(),
            root(),
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(r, other, picks, independent)| {
                if independent {
                    return (r, other);
                }
                let mut c = r.clone();
                let (Some(cm), Some(om)) = (c.as_object_mut(), other.as_object()) else {
                    return (r, other);
                };
                let keys: Vec<String> = om.keys().cloned().collect();
                for pick in picks {
                    if keys.is_empty() {
                        break;
                    }
                    let k = pick.get(&keys);
                    if pick.index(2) == 0 {
                        cm.remove(k);
                    } else {
                        cm.insert(k.clone(), om[k].clone());
                    }
                }
                (r, c)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2000,
            // The recorded failures in canon_diff.proptest-regressions are
            // replayed first, as in every other block of this file.
            ..ProptestConfig::default()
        })]

        #[test]
        fn drift_list_is_exactly_the_leaves_whose_canonical_values_differ(
            (r, c) in pair(),
            seeds in (any::<u64>(), any::<u64>()),
        ) {
            let (mut rs, mut cs) = (seeds.0, seeds.1);
            let (mut rt, mut ct) = (String::new(), String::new());
            write(&r, &mut rs, &mut rt);
            write(&c, &mut cs, &mut ct);
            let outcome = run(&rt, &ct, Some(DEFAULTS));
            let mut got: Vec<(String, DriftKind)> =
                outcome.drifts.iter().map(|d| (d.path.to_string(), d.kind)).collect();
            let mut sorted_paths: Vec<_> = outcome.drifts.iter().map(|d| d.path.clone()).collect();
            sorted_paths.sort();
            let in_order: Vec<_> = outcome.drifts.iter().map(|d| d.path.clone()).collect();
            prop_assert_eq!(in_order, sorted_paths, "drifts come in path order");
            got.sort();
            prop_assert_eq!(got, expected(&r, &c), "running {} committed {}", rt, ct);
            // And a document never drifts from itself written another way.
            let mut again = String::new();
            write(&r, &mut cs, &mut again);
            prop_assert!(run(&rt, &again, Some(DEFAULTS)).drifts.is_empty());
        }

        /// Ignore rules hide exactly what they cover: the drift list is the
        /// reference's, and no rule creates a leaf (every leaf with the rules is
        /// a leaf without them, and none lies under a rule).
        #[test]
        fn ignore_rules_hide_what_they_cover_and_never_create_a_leaf(
            (r, c) in pair(),
            picks in prop::sample::subsequence((0..PATTERNS.len()).collect::<Vec<_>>(), 0..4),
            seed in any::<u64>(),
        ) {
            let texts: Vec<&str> = picks.iter().map(|&i| PATTERNS[i].0).collect();
            let pats: Vec<Vec<Pat>> = picks.iter().map(|&i| PATTERNS[i].1.to_vec()).collect();
            let (mut rs, mut cs) = (seed, seed.rotate_left(17));
            let (mut rt, mut ct) = (String::new(), String::new());
            write(&r, &mut rs, &mut rt);
            write(&c, &mut cs, &mut ct);
            let outcome = run_full(&rt, &ct, Some(DEFAULTS), &texts, "0");
            let mut got: Vec<(String, DriftKind)> =
                outcome.drifts.iter().map(|d| (d.path.to_string(), d.kind)).collect();
            got.sort();
            prop_assert_eq!(got, expected_ignoring(&r, &c, &pats), "running {} committed {} ignoring {:?}", rt, ct, texts);

            // A side's leaves are what it drifts by against an empty document.
            let with = run_full(&rt, "{}", Some(DEFAULTS), &texts, "0").drifts;
            let without: BTreeSet<String> = paths(&run_full(&rt, "{}", Some(DEFAULTS), &[], "0")).into_iter().collect();
            let patterns: Vec<FieldPattern> =
                texts.iter().map(|t| FieldPattern::parse(t).expect("pattern parses")).collect();
            for leaf in &with {
                prop_assert!(without.contains(&leaf.path.to_string()), "{} is new ({} ignoring {:?})", leaf.path, rt, texts);
                prop_assert!(!patterns.iter().any(|pat| pat.covers(&leaf.path)), "{} is ignored", leaf.path);
            }
        }
    }
}
