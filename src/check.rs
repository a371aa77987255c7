//! One evaluation of the fleet → one `ConfigDriftReport` per bot, in slug order.
//! No state, no telemetry: the agent's latch and emitters take it from here.
