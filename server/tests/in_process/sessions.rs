//! A session that cannot be read (the database fails) is a server error on every panel surface,
//! never "your session has ended".

use crate::support::{client, EventStream, TestApp};
use reqwest::{header, StatusCode};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn a_database_error_while_reading_the_session_is_a_500_not_a_sign_out() {
    let app = TestApp::builder().start().await;
    let m = &app.manager;
    let auth = &m.services.auth;
    auth.create_admin("root", PASSWORD).await.expect("admin");
    let session = auth.login("root", PASSWORD, None).await.expect("login");
    let cookie = format!("{}={}", app::ssr::SESSION_COOKIE, session.token);
    let http = client();
    let page = || http.get(m.url("/nodes")).header(header::COOKIE, &cookie);
    let server_fn = || {
        http.post(m.url("/api/list_nodes"))
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
    };

    // Signed in: the page renders, the server function answers, /events streams.
    assert_eq!(page().send().await.expect("page").status(), StatusCode::OK);
    assert_eq!(
        server_fn().send().await.expect("server fn").status(),
        StatusCode::OK
    );
    drop(EventStream::open(m, ("cookie", &cookie)).await);
    // Without the cookie the page sends the browser to sign in.
    let anonymous = http.get(m.url("/nodes")).send().await.expect("page");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()[header::LOCATION], "/login");

    // The database fails.
    m.db.clone().close().await.expect("close the database");
    let res = page().send().await.expect("page");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.headers().get(header::LOCATION).is_none());
    let res = server_fn().send().await.expect("server fn");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.bytes().await.expect("body");
    assert_eq!(
        serde_json::from_slice::<app::AppError>(&body).expect("an AppError"),
        app::AppError::Internal
    );
    let res = http
        .get(m.url("/events"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("GET /events");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
