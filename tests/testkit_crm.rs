//! Seed 000 (the CRM) as served by the testkit: Rails routes, minute/hour/day
//! limits shared by the team, the vendor's headers, and the usage-stats
//! endpoint byte for byte against the document's example.
#![cfg(feature = "testkit")]

use std::time::Duration;

use tower_quota::clock::{ManualClock, Nanos};
use tower_quota::testkit::{Config, TestClient, TestServer, DEFAULT_API_KEY, MASTER_API_KEY};

const USAGE: &str = "/api/v1/usage_stats/api_usage_stats";
const MASTER: [(&str, &str); 1] = [("x-api-key", MASTER_API_KEY)];
const PLAIN: [(&str, &str); 1] = [("x-api-key", DEFAULT_API_KEY)];

async fn seed000() -> (ManualClock, TestServer) {
    let clock = ManualClock::new();
    let server = TestServer::start(Config::seed000().clock(clock.clone()))
        .await
        .expect("bind");
    (clock, server)
}

async fn send(client: &TestClient, method: &str, path: &str, key: &[(&str, &str)], n: usize) {
    for _ in 0..n {
        let r = match method {
            "GET" => client.get(path, key).await,
            _ => client.post(path, key, "{}").await,
        }
        .expect("request");
        assert_eq!(r.status, 200, "{method} {path}");
    }
}

#[tokio::test]
async fn usage_stats_match_the_documented_example_byte_for_byte() {
    let (clock, server) = seed000().await;
    let c = server.client();
    // 00:00:00: traffic that is only in the day windows by query time.
    send(&c, "POST", "/api/v1/paging_events", &PLAIN, 2).await;
    send(
        &c,
        "POST",
        "/api/v1/mixed_people/add_to_my_prospects",
        &MASTER,
        1,
    )
    .await;
    send(&c, "GET", "/api/v1/emailer_campaigns/ec-1", &PLAIN, 2).await;
    send(&c, "POST", "/api/v1/emailer_campaigns/search", &PLAIN, 2).await;
    send(&c, "POST", "/api/v1/users/search", &MASTER, 4).await;
    // 01:00:00: also in the hour windows.
    clock.set(Nanos::from_secs(3600));
    send(&c, "GET", "/api/v1/organizations/org-1", &PLAIN, 3).await;
    send(
        &c,
        "GET",
        "/api/v1/organizations/org-1/show_with_context",
        &PLAIN,
        3,
    )
    .await;
    send(&c, "POST", "/api/v1/mixed_people/search", &MASTER, 9).await;
    send(&c, "POST", "/api/v1/tasks/search", &PLAIN, 3).await;
    send(&c, "POST", "/api/v1/contacts/search", &PLAIN, 5).await;
    // 01:01:10: also in the minute windows.
    clock.set(Nanos::from_secs(3670));
    send(&c, "POST", "/api/v1/mixed_people/search", &PLAIN, 1).await;
    send(&c, "POST", "/api/v1/paging_events", &PLAIN, 1).await;
    send(&c, "POST", "/api/v1/contacts/search", &MASTER, 10).await;
    clock.set(Nanos::from_secs(3680));
    let events = server.recorder().events().len();

    let r = c.post(USAGE, &MASTER, "{}").await.expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), EXAMPLE);
    assert_eq!(
        server.recorder().events().len(),
        events,
        "the usage call is not metered"
    );
}

#[tokio::test]
async fn usage_stats_need_a_master_key() {
    let (_clock, server) = seed000().await;
    let c = server.client();
    let cases: [(&[(&str, &str)], u16); 4] = [
        (&[], 401),
        (&[("x-api-key", "nope")], 401),
        (&PLAIN, 403),
        (&MASTER, 200),
    ];
    for (key, status) in cases {
        let r = c.post(USAGE, key, "{}").await.expect("request");
        assert_eq!(r.status.as_u16(), status, "{key:?}");
    }
    let r = c.post(USAGE, &PLAIN, "{}").await.expect("request");
    assert_eq!(
        r.text(),
        r#"{"error":"This endpoint requires a master API key."}"#
    );
    let r = c
        .post("/api/v1/contacts/search", &[], "{}")
        .await
        .expect("request");
    assert_eq!(r.status, 401);
    assert!(server.recorder().events().is_empty());
}

#[tokio::test]
async fn vendor_headers_give_one_pair_per_window_and_windows_are_fixed() {
    let (clock, server) = seed000().await;
    let c = server.client();
    let pairs = |r: &tower_quota::testkit::TestResponse| {
        [
            "x-rate-limit-minute",
            "x-minute-requests-left",
            "x-rate-limit-hourly",
            "x-hourly-requests-left",
            "x-rate-limit-24-hour",
            "x-24-hour-requests-left",
        ]
        .map(|h| r.header(h).map(str::to_owned))
    };
    let some = |v: [&str; 6]| v.map(|s| Some(s.to_owned()));
    // conversations#export: 1 per minute, 20 per hour, 480 per day.
    clock.set(Nanos::from_secs(59));
    let r = c
        .get("/api/v1/conversations/export", &PLAIN)
        .await
        .expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"route":"api/v1/conversations#export"}"#);
    assert_eq!(pairs(&r), some(["1", "0", "20", "19", "480", "479"]));
    clock.set(Nanos::from_millis(59_999));
    let r = c
        .get("/api/v1/conversations/export", &MASTER)
        .await
        .expect("request");
    assert_eq!(r.status, 429, "the team shares the bucket");
    assert_eq!(r.text(), r#"{"error":"Rate limit exceeded."}"#);
    assert_eq!(pairs(&r), some(["1", "0", "20", "19", "480", "479"]));
    assert_eq!(r.header("retry-after"), None);
    // 00:01:00 is a new calendar minute (a sliding window would still refuse).
    clock.set(Nanos::from_secs(60));
    let r = c
        .get("/api/v1/conversations/export", &PLAIN)
        .await
        .expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(pairs(&r), some(["1", "0", "20", "18", "480", "478"]));
    let stats = server.stats();
    let b = stats
        .bucket("team", None, "api/v1/conversations#export")
        .expect("bucket");
    assert_eq!((b.admitted, b.rejected), (2, 1));
    let maxima: Vec<u64> = b.windows.iter().map(|w| w.max_in_any_window).collect();
    assert_eq!(maxima, [2, 2, 1], "day, hour, minute");
    assert!(stats.violations().is_empty());
}

#[tokio::test]
async fn rails_routes_and_unlisted_routes() {
    let (clock, server) = seed000().await;
    let c = server.client();
    let r = c.get("/v1/contacts", &PLAIN).await.expect("request");
    assert_eq!(r.status, 404);
    // An unlisted pair is served without limits or headers.
    let r = c.get("/api/v1/widgets/7", &PLAIN).await.expect("request");
    assert_eq!(
        (r.status.as_u16(), r.header("x-rate-limit-minute")),
        (200, None)
    );
    assert_eq!(r.text(), r#"{"route":"api/v1/widgets#show"}"#);
    assert_eq!(
        server.route_of("PATCH", "/api/v1/contacts/c-1").as_deref(),
        Some("api/v1/contacts#update")
    );
    // mfa_config#create: 5 per minute for the whole team.
    send(&c, "POST", "/api/v1/mfa_config", &PLAIN, 3).await;
    send(&c, "POST", "/api/v1/mfa_config", &MASTER, 2).await;
    let r = c
        .post("/api/v1/mfa_config", &PLAIN, "{}")
        .await
        .expect("request");
    assert_eq!(r.status, 429);
    clock.advance(Duration::from_secs(60));
    send(&c, "POST", "/api/v1/mfa_config", &MASTER, 5).await;
    let r = c
        .post("/api/v1/mfa_config", &PLAIN, "{}")
        .await
        .expect("request");
    assert_eq!(
        (r.status.as_u16(), r.header("x-hourly-requests-left")),
        (429, Some("10"))
    );
}

/// Seed 000's example response, verbatim, with two differences: the closing
/// brace the document lost, and the first entry, whose numbers cannot all be
/// true at once (500 consumed of 6000 with 6000 left; more per minute than per
/// hour), replaced by consistent ones.
const EXAMPLE: &str = r#"{
  "[\"api/v1/contacts\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 15,
      "left_over": 5985
    },
    "hour": {
      "limit": 600,
      "consumed": 15,
      "left_over": 585
    },
    "minute": {
      "limit": 200,
      "consumed": 10,
      "left_over": 190
    }
  },
  "[\"api/v1/contacts\", \"intelligent_fuzzy_search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/contacts\", \"create\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/contacts\", \"update\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/contacts\", \"match\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/contacts\", \"bulk_match\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 100,
      "consumed": 0,
      "left_over": 100
    },
    "minute": {
      "limit": 20,
      "consumed": 0,
      "left_over": 20
    }
  },
  "[\"api/v1/contact_stages\", \"index\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/accounts\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/account_stages\", \"index\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/people\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/people\", \"match\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/people\", \"bulk_match\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 100,
      "consumed": 0,
      "left_over": 100
    },
    "minute": {
      "limit": 20,
      "consumed": 0,
      "left_over": 20
    }
  },
  "[\"api/v1/people\", \"show\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/organizations\", \"show\"]": {
    "day": {
      "limit": 6000,
      "consumed": 3,
      "left_over": 5997
    },
    "hour": {
      "limit": 600,
      "consumed": 3,
      "left_over": 597
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/organizations\", \"show_with_context\"]": {
    "day": {
      "limit": 6000,
      "consumed": 3,
      "left_over": 5997
    },
    "hour": {
      "limit": 600,
      "consumed": 3,
      "left_over": 597
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/organizations\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/organizations\", \"enrich\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/organizations\", \"bulk_enrich\"]": {
    "day": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "hour": {
      "limit": 100,
      "consumed": 0,
      "left_over": 100
    },
    "minute": {
      "limit": 20,
      "consumed": 0,
      "left_over": 20
    }
  },
  "[\"api/v1/organizations\", \"job_postings\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/organizations\", \"employee_metrics\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/mixed_companies\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/mixed_people\", \"add_to_my_prospects\"]": {
    "day": {
      "limit": 6000,
      "consumed": 1,
      "left_over": 5999
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 100,
      "consumed": 0,
      "left_over": 100
    }
  },
  "[\"api/v1/mixed_people\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 10,
      "left_over": 5990
    },
    "hour": {
      "limit": 600,
      "consumed": 10,
      "left_over": 590
    },
    "minute": {
      "limit": 200,
      "consumed": 1,
      "left_over": 199
    }
  },
  "[\"api/v1/mixed_people\", \"organization_top_people\"]": {
    "day": {
      "limit": 2000,
      "consumed": 0,
      "left_over": 2000
    },
    "hour": {
      "limit": 400,
      "consumed": 0,
      "left_over": 400
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/conversation_shares\", \"create\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/conversation_shares\", \"update\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/conversation_shares\", \"show\"]": {
    "day": {
      "limit": 300,
      "consumed": 0,
      "left_over": 300
    },
    "hour": {
      "limit": 50,
      "consumed": 0,
      "left_over": 50
    },
    "minute": {
      "limit": 10,
      "consumed": 0,
      "left_over": 10
    }
  },
  "[\"api/v1/conversation_shares\", \"external\"]": {
    "day": {
      "limit": 300,
      "consumed": 0,
      "left_over": 300
    },
    "hour": {
      "limit": 50,
      "consumed": 0,
      "left_over": 50
    },
    "minute": {
      "limit": 10,
      "consumed": 0,
      "left_over": 10
    }
  },
  "[\"api/v1/conversations\", \"ask_anything_v2_chat\"]": {
    "day": {
      "limit": 1000,
      "consumed": 0,
      "left_over": 1000
    },
    "hour": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    },
    "minute": {
      "limit": 20,
      "consumed": 0,
      "left_over": 20
    }
  },
  "[\"api/v1/conversations\", \"export\"]": {
    "day": {
      "limit": 480,
      "consumed": 0,
      "left_over": 480
    },
    "hour": {
      "limit": 20,
      "consumed": 0,
      "left_over": 20
    },
    "minute": {
      "limit": 1,
      "consumed": 0,
      "left_over": 1
    }
  },
  "[\"api/v1/voice_settings\", \"get_available_phone_numbers\"]": {
    "day": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    },
    "hour": {
      "limit": 50,
      "consumed": 0,
      "left_over": 50
    },
    "minute": {
      "limit": 10,
      "consumed": 0,
      "left_over": 10
    }
  },
  "[\"api/v1/tasks\", \"create\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/tasks\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 3,
      "left_over": 5997
    },
    "hour": {
      "limit": 600,
      "consumed": 3,
      "left_over": 597
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/tasks\", \"bulk_complete\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/reports\", \"sync_report\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 5,
      "consumed": 0,
      "left_over": 5
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/mfa_config\", \"create\"]": {
    "day": {
      "limit": 50,
      "consumed": 0,
      "left_over": 50
    },
    "hour": {
      "limit": 20,
      "consumed": 0,
      "left_over": 20
    },
    "minute": {
      "limit": 5,
      "consumed": 0,
      "left_over": 5
    }
  },
  "[\"api/v1/phone_calls\", \"create\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/phone_calls\", \"update\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/paging_events\", \"create\"]": {
    "day": {
      "limit": 6000,
      "consumed": 3,
      "left_over": 5997
    },
    "hour": {
      "limit": 600,
      "consumed": 1,
      "left_over": 599
    },
    "minute": {
      "limit": 200,
      "consumed": 1,
      "left_over": 199
    }
  },
  "[\"api/v1/crm\", \"object_fields_mapping\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/emailer_campaigns\", \"show\"]": {
    "day": {
      "limit": 6000,
      "consumed": 2,
      "left_over": 5998
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/emailer_campaigns\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 2,
      "left_over": 5998
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/emailer_campaigns\", \"add_contact_ids\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/emailer_campaigns\", \"remove_or_stop_contact_ids\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/emailer_messages\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/emailer_messages\", \"activities\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/users\", \"search\"]": {
    "day": {
      "limit": 6000,
      "consumed": 4,
      "left_over": 5996
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/email_accounts\", \"index\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/labels\", \"index\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  },
  "[\"api/v1/typed_custom_fields\", \"index\"]": {
    "day": {
      "limit": 6000,
      "consumed": 0,
      "left_over": 6000
    },
    "hour": {
      "limit": 600,
      "consumed": 0,
      "left_over": 600
    },
    "minute": {
      "limit": 200,
      "consumed": 0,
      "left_over": 200
    }
  }
}"#;
