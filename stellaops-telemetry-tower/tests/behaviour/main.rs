//! The tower crate's integration tests: one module per behaviour, each named as a sentence,
//! in one test binary (every test binary links the whole dependency graph, so one binary
//! builds far faster than one per behaviour).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The in-process OTLP receiver that can be switched off and on (shared with core's tests).
#[path = "../../../stellaops-telemetry-core/tests/support/switchable.rs"]
mod switchable;

mod a_tonic_server_behind_the_layer_reports_grpc_statuses;
mod arbitrary_header_bytes_never_panic_and_never_slip_past_the_grammar;
mod captured_headers_pass_the_redactor_and_incidents_add_the_extended_attributes;
mod control_plane_routes_are_authorised_audited_and_refuse_bad_input;
mod health_endpoints_answer_when_nested_or_routed_in_axum;
mod health_report_has_the_seed_shape_and_reports_the_pipeline;
mod hostile_tenant_and_request_id_headers_at_scale_and_health_through_a_collector_outage;
mod instrumented_calls_allocate_one_context_in_the_steady_state;
mod instrumented_handlers_nest_under_the_request_span_and_record_metrics;
mod log_events_allocate_nothing_in_the_steady_state;
mod readiness_fails_on_a_failing_slow_or_panicking_check;
mod request_layer_records_the_span_and_the_request_metrics;
mod requests_allocate_a_fixed_handful_in_the_steady_state;
mod server_layer_handles_request_ids_bodies_grpc_and_bad_headers;
mod the_exported_span_the_metrics_and_the_log_line_agree;
mod trace_context_extraction_follows_the_w3c_specifications;
mod trace_context_round_trips_from_server_through_client_to_a_second_server;
