"""Prometheus endpoint of the edge daemon (``outputs.prometheus`` in edge.yaml).

The exporter does not keep counters of its own: a collector reads the
daemon's counters (one ``snapshot()`` dict) at every scrape, so what
Prometheus sees is exactly what the daemon's JSONL ``stats`` lines say.

Exposed (names as in issue 5; counters get ``_total``):

===============================  =======  =============================================
``ssbs_scored_total``            counter  per-SSB records emitted (valid or not)
``ssbs_jammed_total``            counter  records with ``jammed: true``
``ssbs_invalid_total``           counter  records with ``valid: false`` (NaN / zero input, a gain step, clipping)
``ssbs_faded_total``             counter  jammed verdicts withdrawn: the cell faded, its floor did not move
``ssbs_mistimed_cell_total``     counter  the model's jammed verdicts withdrawn: a co-channel cell off the CP
``ssbs_neighbour_cancelled_total`` counter  uncalibrated jammed verdicts withdrawn: clean with the searched neighbour cancelled
``ssbs_band_excess_offtime_total`` counter  uncalibrated SSBs the band-excess rule left to the model (an unsynchronised cell, or interference on part of the SSB's symbols)
``ssbs_site_classical_total``    counter  SSBs scored by the classical detector (a site the model cannot be calibrated to)
``ssbs_clipped_total``           counter  SSBs with samples at the ADC's rails (lower the receiver gain)
``ssbs_gain_step_total``         counter  jammed verdicts made invalid: the receiver's gain stepped inside the SSB
``ssbs_clip_overload_total``     counter  jammed verdicts made invalid: the ADC's clipping distortion explains them
``ssbs_cell_hidden_total``       counter  SSBs jammed with the cell's PSS lost and the cell not found by a search (a jammer under an AGC, or under one the cell off the air)
``no_cell_blocks_total``          counter  cell searches that missed a calibrated site's cell (jammed records)
``events_total{kind}``           counter  JAMMING_STARTED / JAMMING_CLEARED events
``samples_in_total``             counter  samples offered by the source (dropped ones too)
``samples_processed_total``      counter  samples pushed through the receiver
``samples_dropped_total``        counter  samples lost (queue full, or left at shutdown)
``samples_unsearched_total``     counter  processed samples skipped while no cell was locked
``timing_jumps_total``           counter  SSB timing found moved (samples lost upstream, unseen)
``samples_nonfinite_total``      counter  NaN / Inf samples seen
``malformed_messages_total``     counter  datagrams / messages with a partial sample
``dropped_bytes_total``          counter  bytes of partial samples thrown away
``source_reconnects_total``      counter  source reconnections (all sources so far)
``mqtt_events_dropped_total``    counter  events that could not be kept for MQTT
``lock_state``                   gauge    1 when the receiver is locked on a cell
``real_time_factor``             gauge    seconds of IQ processed per second spent
``queue_fill_samples``           gauge    samples waiting in the block queue
``dc_offset_power_ratio``        gauge    receiver DC offset removed: its power / the signal's (0: none)
``iq_image_power_ratio``         gauge    receiver IQ imbalance image removed: its power / the signal's (0: none)
``iq_swapped``                   gauge    1 when the samples are conjugated (I and Q swapped at the source)
``calibrated``                   gauge    1 when a site baseline is in use (loaded or learned)
``baseline_learning``            gauge    1 during the quiet period of ``detector.learn_baseline_s``
===============================  =======  =============================================

``prometheus_client`` is imported only when the endpoint is enabled; without
it, :class:`MetricsServer` raises a :class:`RuntimeError` that says
``pip install ssbwatch[net]``.  The server binds the configured host only
(default 127.0.0.1): ``prometheus_client.start_http_server`` would bind
0.0.0.0 unless given an address.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["COUNTERS", "GAUGES", "MetricsServer", "EVENT_KINDS"]

EVENT_KINDS = ("JAMMING_STARTED", "JAMMING_CLEARED")

#: snapshot key -> (metric name without _total, help)
COUNTERS = {
    "ssbs_scored": ("ssbs_scored", "SSBs scored (per-SSB records emitted)"),
    "ssbs_jammed": ("ssbs_jammed", "SSBs declared jammed"),
    "ssbs_invalid": ("ssbs_invalid", "SSBs marked invalid (NaN/Inf/all-zero input, a receiver gain step, "
                     "ADC clipping overload)"),
    "ssbs_faded": ("ssbs_faded", "jammed verdicts withdrawn because the cell faded with its noise floor unchanged"),
    "ssbs_mistimed_cell": ("ssbs_mistimed_cell", "the model's jammed verdicts withdrawn for a co-channel cell more "
                           "than 2/3 of a CP off the serving cell's timing (calibrated: the site's own, by the "
                           "classical detector)"),
    "ssbs_neighbour_cancelled": ("ssbs_neighbour_cancelled", "uncalibrated jammed verdicts withdrawn: the SSB is "
                                 "clean with the co-channel cell the cell search saw cancelled"),
    "ssbs_band_excess_offtime": ("ssbs_band_excess_offtime", "uncalibrated SSBs with interference in the SSB's "
                                 "band that the band-excess rule left to the model: a co-channel cell the cell "
                                 "search saw is not synchronised with the serving one, or the interference "
                                 "stands on part of the SSB's symbols only"),
    "ssbs_site_classical": ("ssbs_site_classical", "SSBs scored by the classical detector at a calibrated site: "
                            "the model scores its clean SSBs as jammed beyond its thresholds' reach, or the SSB "
                            "shows the site's own co-channel cell off its timing"),
    "ssbs_clipped": ("ssbs_clipped", "SSBs with samples at the ADC's rails (the receiver gain is too high)"),
    "ssbs_gain_step": ("ssbs_gain_step", "jammed verdicts made invalid: the receiver's gain stepped inside the SSB "
                       "(an AGC), proven by the cell's PBCH-DMRS"),
    "ssbs_clip_overload": ("ssbs_clip_overload", "jammed verdicts made invalid: the SSB held no more interference "
                           "than the ADC's clipping distortion (the receiver overdriven)"),
    "ssbs_cell_hidden": ("ssbs_cell_hidden", "SSBs jammed with the cell's PSS lost on every slot and the cell not "
                         "found by a search, their null REs over the stream's clean level (a jammer under a "
                         "receiver's AGC, or under one the cell off the air)"),
    "no_cell_blocks": ("no_cell_blocks", "cell searches that did not find a calibrated site's cell (jammed records)"),
    "samples_in": ("samples_in", "samples offered by the source, dropped ones included"),
    "samples_processed": ("samples_processed", "samples pushed through the receiver"),
    "samples_dropped": ("samples_dropped", "samples dropped (queue full or left at shutdown)"),
    "samples_unsearched": ("samples_unsearched", "processed samples the receiver skipped while searching for a cell"),
    "timing_jumps": ("timing_jumps", "times the SSB timing was found moved (samples lost upstream, unseen)"),
    "samples_nonfinite": ("samples_nonfinite", "NaN/Inf samples received"),
    "malformed_messages": ("malformed_messages", "datagrams/messages that were not whole samples"),
    "dropped_bytes": ("dropped_bytes", "bytes of incomplete samples thrown away"),
    "source_reconnects": ("source_reconnects", "source reconnections"),
    "mqtt_events_dropped": ("mqtt_events_dropped", "events dropped from the MQTT retry queue"),
}
#: snapshot key -> (metric name, help)
GAUGES = {
    "lock_state": ("lock_state", "1 when the receiver is locked on a cell, else 0"),
    "other_cells_seen": ("other_cells_seen", "cells other than the serving one that the cell searches reported on "
                                             "the channel (neighbours, or a fake SSB's PCI); their PCIs are in the "
                                             "JSONL stats lines"),
    "real_time_factor": ("real_time_factor", "seconds of IQ processed per second of processing"),
    "queue_fill_samples": ("queue_fill_samples", "samples waiting in the block queue"),
    "dc_offset_power_ratio": ("dc_offset_power_ratio",
                              "receiver DC offset being removed: its power over the signal's (0: none)"),
    "iq_image_power_ratio": ("iq_image_power_ratio",
                             "receiver IQ imbalance image being removed: its power over the signal's (0: none)"),
    "iq_swapped": ("iq_swapped", "1 when the samples are conjugated: I and Q swapped at the source "
                                 "(configured, or the cell found only so), else 0"),
    "calibrated": ("calibrated", "1 when a site baseline is in use (loaded, or learned over the quiet period), "
                                 "else 0 (uncalibrated)"),
    "baseline_learning": ("baseline_learning", "1 while the site baseline is being learned over its quiet "
                                               "period (detector.learn_baseline_s), else 0"),
}


def _import_prometheus():
    try:
        import prometheus_client  # noqa: F401
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the Prometheus endpoint needs prometheus_client: pip install ssbwatch[net] "
            "(or set outputs.prometheus.enabled: false)"
        ) from exc
    return prometheus_client, CounterMetricFamily, GaugeMetricFamily


class MetricsServer:
    """HTTP endpoint serving the daemon's counters; ``close()`` stops it.

    ``snapshot`` is called from the HTTP thread at each scrape and must return
    a dict with the keys of :data:`COUNTERS` and :data:`GAUGES` plus
    ``events`` (``{kind: count}``); missing keys are served as 0.
    """

    def __init__(self, snapshot: Callable[[], dict], host: str = "127.0.0.1", port: int = 9108):
        prom, Counter, Gauge = _import_prometheus()
        from prometheus_client.registry import CollectorRegistry

        class _Collector:
            def collect(self_inner):
                snap = snapshot()
                for key, (name, doc) in COUNTERS.items():
                    c = Counter(name, doc)
                    c.add_metric([], float(snap.get(key, 0) or 0))
                    yield c
                ev = Counter("events", "alert events by kind", labels=["kind"])
                events = snap.get("events", {}) or {}
                for kind in sorted(set(EVENT_KINDS) | set(events)):
                    ev.add_metric([kind], float(events.get(kind, 0)))
                yield ev
                for key, (name, doc) in GAUGES.items():
                    g = Gauge(name, doc)
                    g.add_metric([], float(snap.get(key, 0) or 0))
                    yield g

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector())
        self.host = host
        self._httpd, self._thread = prom.start_http_server(int(port), addr=host, registry=self.registry)
        self.port = int(self._httpd.server_port)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(2.0)
            self._httpd = None
