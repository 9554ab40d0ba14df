use serde_json::json;

use super::*;

fn catalog() -> Catalog {
    Catalog::with(&[]).expect("the built-in definitions are valid")
}

fn fields(v: &Violations) -> Vec<String> {
    v.0.iter().map(|f| f.field.clone()).collect()
}

#[test]
fn the_built_in_providers_are_postgresql_bucket_and_redis() {
    let c = catalog();
    let names: Vec<&str> = c.all().map(|p| p.definition.name.as_str()).collect();
    assert_eq!(names, ["bucket", "postgresql", "redis"]);
    let pg = &c.get("postgresql").expect("pg").definition;
    assert_eq!(pg.category, Category::Database);
    assert!(pg.capabilities.pausable);
    assert_eq!(pg.needs, Needs::BlockStorage);
    assert!(
        !c.get("bucket")
            .expect("bucket")
            .definition
            .capabilities
            .pausable
    );
}

#[test]
fn configs_are_checked_against_the_schema_naming_each_field() {
    let c = catalog();
    let pg = c.get("postgresql").expect("pg");
    let mut v = Violations::default();
    pg.check_config(
        &mut v,
        "config",
        &json!({"version": "16", "storage_gib": 10, "shape": "FLX", "database": "shop", "user": "shop"}),
    );
    assert!(v.is_empty(), "{v:?}");
    let mut v = Violations::default();
    pg.check_config(
        &mut v,
        "config",
        &json!({"version": "9", "storage_gib": 0, "shape": "FLX", "database": "Bad Name", "colour": 1}),
    );
    let got = fields(&v);
    for want in [
        "config.version",
        "config.storage_gib",
        "config.database",
        "config",
    ] {
        assert!(
            got.contains(&want.to_owned()),
            "{want} missing from {got:?}"
        );
    }
}

#[test]
fn secret_errors_never_quote_the_secret() {
    let c = catalog();
    let pg = c.get("postgresql").expect("pg");
    let mut v = Violations::default();
    pg.check_secrets(&mut v, "secrets", &json!({"password": "short-pw"}));
    assert_eq!(fields(&v), ["secrets.password"]);
    assert!(!format!("{v:?}").contains("short-pw"), "{v:?}");
}

#[test]
fn updates_follow_each_fields_rule() {
    let c = catalog();
    let pg = c.get("postgresql").expect("pg");
    let old = json!({"version": "16", "storage_gib": 10, "shape": "FLX", "database": "shop", "user": "shop"});
    let check = |new: serde_json::Value| {
        let mut v = Violations::default();
        pg.check_update(&mut v, "config", &old, &new);
        fields(&v)
    };
    assert!(check(json!({"version": "16", "storage_gib": 20, "shape": "MAX", "database": "shop", "user": "shop"})).is_empty());
    assert_eq!(
        check(
            json!({"version": "15", "storage_gib": 5, "shape": "FLX", "database": "shop", "user": "shop"})
        ),
        ["config.storage_gib", "config.version"]
    );
}

#[test]
fn broken_definitions_are_refused_naming_the_file() {
    let bad = [
        ("not-json.json", "{".to_owned()),
        (
            "bad-name.json",
            include_str!("../../providers/redis.json").replace("\"redis\"", "\"Redis DB\""),
        ),
        (
            "bad-rule.json",
            include_str!("../../providers/redis.json")
                .replace("\"shape\": \"EDITABLE\"", "\"colour\": \"EDITABLE\""),
        ),
        (
            "bad-schema.json",
            include_str!("../../providers/redis.json")
                .replace("\"type\": \"object\"", "\"type\": \"no-such-type\""),
        ),
    ];
    for (file, text) in bad {
        let err = Catalog::with(&[(file.to_owned(), text)]).expect_err(file);
        assert!(err.to_string().contains(file), "{err}");
    }
    // An operator's definition adds to the catalog (or replaces a built-in of that name).
    let extra = include_str!("../../providers/redis.json").replace("\"redis\"", "\"valkey\"");
    let c = Catalog::with(&[("valkey.json".into(), extra)]).expect("valid");
    assert!(c.get("valkey").is_some() && c.get("redis").is_some());
}

#[test]
fn the_built_in_runtimes_render_from_config_and_secrets() {
    let c = catalog();
    let pg = c
        .get("postgresql")
        .expect("pg")
        .render(
            &json!({"version": "16", "storage_gib": 10, "shape": "MAX", "database": "shop", "user": "owner"}),
            &json!({"password": "correct horse battery"}),
        )
        .expect("renders");
    let Run::Stateful(run) = &pg.run else {
        panic!("postgresql runs a container: {pg:?}")
    };
    assert_eq!(run.image, "postgres:16");
    assert_eq!((run.cpu_millis, run.memory_mib), (1000, 2048));
    assert_eq!(run.storage_gib, Some(10));
    assert!(
        run.env
            .iter()
            .any(|e| e.name == "POSTGRES_DB" && e.value == "shop")
    );
    assert_eq!(run.secrets.len(), 1);
    assert_eq!(run.secrets[0].value, "correct horse battery");
    assert_eq!(pg.details["database"], json!("shop"));
    assert!(
        !format!("{:?}{:?}", run.env, pg.details).contains("horse"),
        "the secret goes into the Secret only"
    );
    let redis = c
        .get("redis")
        .expect("redis")
        .render(
            &json!({"version": "7", "shape": "FLX"}),
            &json!({"password": "0123456789abc"}),
        )
        .expect("renders");
    let Run::Stateful(run) = &redis.run else {
        panic!("redis runs a container")
    };
    assert_eq!(run.storage_gib, None, "no storage size: no volume");
    let bucket = c
        .get("bucket")
        .expect("bucket")
        .render(
            &json!({"quota_gib": 2, "versioning": true}),
            &json!({"secret_key": "0123456789abcdefgh"}),
        )
        .expect("renders");
    assert_eq!(
        bucket.run,
        Run::Bucket(BucketRun {
            quota_bytes: 2 << 30,
            versioning: true,
            secret_key: "0123456789abcdefgh".into()
        })
    );
}

#[test]
fn a_runtime_may_put_secrets_only_into_secrets() {
    let pg = include_str!("../../providers/postgresql.json");
    let leaky = pg.replace(
        "\"POSTGRES_DB\": \"${config.database}\"",
        "\"POSTGRES_DB\": \"${secrets.password}\"",
    );
    assert_ne!(leaky, pg);
    let err = Catalog::with(&[("leaky.json".into(), leaky)]).expect_err("refused");
    assert!(err.to_string().contains("secret_env"), "{err}");
    let unknown = pg.replace("${config.version}", "${config.release}");
    let err = Catalog::with(&[("unknown.json".into(), unknown)]).expect_err("refused");
    assert!(err.to_string().contains("config.release"), "{err}");
}

#[test]
fn rendered_runs_never_show_their_secrets_in_debug_output() {
    let c = catalog();
    let pg = c
        .get("postgresql")
        .expect("pg")
        .render(
            &json!({"version": "16", "storage_gib": 1, "shape": "FLX", "database": "d", "user": "u"}),
            &json!({"password": "never-in-a-log-1"}),
        )
        .expect("renders");
    let bucket = c
        .get("bucket")
        .expect("bucket")
        .render(
            &json!({"quota_gib": 1}),
            &json!({"secret_key": "never-in-a-log-2"}),
        )
        .expect("renders");
    let shown = format!("{pg:?} {bucket:?}");
    assert!(
        shown.contains("POSTGRES_PASSWORD"),
        "names are shown: {shown}"
    );
    assert!(!shown.contains("never-in-a-log"), "{shown}");
}

#[test]
fn the_built_in_providers_list_their_images() {
    let c = catalog();
    let images = |name: &str| c.get(name).expect(name).images().to_vec();
    assert_eq!(images("postgresql"), ["postgres:15", "postgres:16"]);
    assert_eq!(images("redis"), ["redis:7"]);
    assert!(images("bucket").is_empty(), "a bucket runs no container");
}

/// A config valid against `schema` with `chosen` values for its enum fields: each other
/// required field at the least its schema allows.
fn valid_config(
    schema: &serde_json::Value,
    chosen: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut config = chosen.clone();
    for field in schema["required"].as_array().expect("required fields") {
        let field = field.as_str().expect("a name");
        let property = &schema["properties"][field];
        let least = match property["type"].as_str() {
            Some("integer" | "number") => property["minimum"].clone(),
            Some("boolean") => json!(true),
            _ => json!("a"),
        };
        config.entry(field).or_insert(least);
    }
    serde_json::Value::Object(config)
}

/// Every config a schema's enum fields allow, each other field at its least.
fn every_enum_config(schema: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut chosen = vec![serde_json::Map::new()];
    for (field, property) in schema["properties"].as_object().expect("properties") {
        let Some(values) = property["enum"].as_array() else {
            continue;
        };
        chosen = chosen
            .iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(field.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    chosen.iter().map(|c| valid_config(schema, c)).collect()
}

#[test]
fn every_image_a_provider_renders_is_in_its_list() {
    let c = catalog();
    for provider in c.all() {
        let schema = &provider.definition.config_schema;
        let secrets =
            json!({"password": "correct-horse-battery", "secret_key": "0123456789abcdefgh"});
        for config in every_enum_config(schema) {
            let mut v = Violations::default();
            provider.check_config(&mut v, "config", &config);
            assert!(
                v.is_empty(),
                "{}: {config} is not valid: {v:?}",
                provider.definition.name
            );
            let rendered = provider.render(&config, &secrets).expect("renders");
            if let Run::Stateful(run) = rendered.run {
                assert!(
                    provider.images().contains(&run.image),
                    "{} runs {} for {config}, which its list {:?} lacks",
                    provider.definition.name,
                    run.image,
                    provider.images()
                );
            }
        }
    }
}

#[test]
fn an_image_that_cannot_be_listed_is_refused() {
    let redis = include_str!("../../providers/redis.json");
    for (file, image, says) in [
        // storage_gib is free (any number), and optional.
        (
            "free.json",
            "redis:${config.storage_gib}",
            "config.storage_gib",
        ),
        (
            "not-an-image.json",
            "Redis:${config.version}",
            "not an image reference",
        ),
    ] {
        let text = redis.replace("redis:${config.version}", image);
        assert_ne!(text, redis);
        let err = Catalog::with(&[(file.to_owned(), text)]).expect_err(file);
        assert!(err.to_string().contains(says), "{err}");
    }
}
