"""signals.nr against TS 38.211 and an independent implementation (py3gpp)."""
import numpy as np
import pytest

from signals import nr

RATES_HZ = [3.84e6, 7.68e6, 11.52e6, 15.36e6, 23.04e6, 30.72e6, 46.08e6, 61.44e6]


def test_pss_sss_dmrs_match_py3gpp_for_all_pcis():
    py3 = pytest.importorskip("py3gpp")
    from py3gpp.nrPBCHDMRS import nrPBCHDMRS
    from py3gpp.nrPSS import nrPSS
    from py3gpp.nrSSS import nrSSS

    for pci in range(nr.N_CELL_ID_COUNT):
        assert np.array_equal(nrPSS(pci), nr.pss(pci % 3)), pci
        assert np.array_equal(nrSSS(pci), nr.sss(pci)), pci
        ibar = pci % 8  # every ī_SSB is covered across the PCIs (py3gpp's generator is slow)
        np.testing.assert_allclose(nr.pbch_dmrs(pci, ibar), nrPBCHDMRS(pci, ibar), atol=1e-6, err_msg=str(pci))
    assert py3 is not None


def test_dmrs_all_ibar_and_pbch_scrambling_match_py3gpp():
    pytest.importorskip("py3gpp")
    from py3gpp.nrPBCH import nrPBCH
    from py3gpp.nrPBCHDMRS import nrPBCHDMRS

    rng = np.random.default_rng(1)
    for pci in (0, 1, 2, 3, 17, 500, 1007):
        for ibar in range(8):
            np.testing.assert_allclose(nr.pbch_dmrs(pci, ibar), nrPBCHDMRS(pci, ibar), atol=1e-6)
        bits = rng.integers(0, 2, nr.PBCH_N_BITS)
        for ssb_index in range(8):
            np.testing.assert_allclose(
                nr.pbch_symbols(bits, pci, ssb_index, 8), nrPBCH(pci, ssb_index, bits), atol=1e-6
            )
        np.testing.assert_allclose(nr.pbch_symbols(bits, pci, 6, 4), nrPBCH(pci, 2, bits), atol=1e-6)


def test_ssb_grid_indices_match_py3gpp():
    pytest.importorskip("py3gpp")
    from py3gpp.nrPBCHDMRSIndices import nrPBCHDMRSIndices
    from py3gpp.nrPBCHIndices import nrPBCHIndices

    for pci in (0, 1, 2, 3, 501):
        maps = nr.ssb_re_indices(pci)
        # py3gpp returns 0-based linear indices k + 240 l (column-major over 240 x 4)
        lin = lambda lk: lk[1] + nr.SSB_N_SUBCARRIERS * lk[0]  # noqa: E731
        assert np.array_equal(lin(maps["dmrs"]), np.asarray(nrPBCHDMRSIndices(pci)).ravel())
        assert np.array_equal(lin(maps["pbch"]), np.asarray(nrPBCHIndices(pci)).ravel())


def test_sequences_correlate_to_one_only_at_true_id():
    p = np.stack([nr.pss(i) for i in range(3)])
    c = p @ p.T / nr.PSS_LENGTH
    assert np.allclose(np.diag(c), 1)
    assert np.max(np.abs(c - np.eye(3))) < 0.1
    t = nr.sss_table()
    c = t @ t[500] / nr.SSS_LENGTH
    assert c[500] == pytest.approx(1.0)
    assert np.sort(np.abs(c))[-2] < 0.25


def test_gold_sequence_known_prefix():
    # c_init = 0: x2 is all zero, so c(n) = x1(n + 1600); first bits computed by the plain recurrence
    x1 = np.zeros(1700 + 31, dtype=np.uint8)
    x1[0] = 1
    for n in range(1700):
        x1[n + 31] = x1[n + 3] ^ x1[n]
    assert np.array_equal(nr.gold_sequence(0, 100), x1[1600:1700])


@pytest.mark.parametrize("c_init", [1, 2**30, 0x2A5A5A5, 2**31 - 1])
def test_gold_sequence_matches_the_plain_recurrence_for_any_c_init(c_init):
    # both registers run bit by bit as TS 38.211 §5.2.1 writes them (x2 starts from c_init's bits)
    length = 300
    x1 = np.zeros(1600 + length + 31, dtype=np.uint8)
    x2 = np.zeros_like(x1)
    x1[0] = 1
    x2[:31] = [(c_init >> b) & 1 for b in range(31)]
    for n in range(1600 + length):
        x1[n + 31] = x1[n + 3] ^ x1[n]
        x2[n + 31] = x2[n + 3] ^ x2[n + 2] ^ x2[n + 1] ^ x2[n]
    want = x1[1600 : 1600 + length] ^ x2[1600 : 1600 + length]
    assert np.array_equal(nr.gold_sequence(c_init, length), want)
    assert np.array_equal(nr.gold_sequence(c_init, 17), want[:17])  # another length: its own basis


def test_null_re_mask_counts():
    assert nr.NULL_RE_MASK.sum() == 130  # 113 in symbol 0 + 17 in symbol 2
    g = nr.ssb_grid(123, 3, 8, rng=np.random.default_rng(0))
    assert np.all(g[nr.NULL_RE_MASK] == 0)
    assert np.count_nonzero(g) == 830
    assert np.allclose(np.abs(g[~nr.NULL_RE_MASK]), 1.0)


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("scs_khz", [15, 30])
def test_numerology_and_cp_equals_symbol_tail(rate_hz, scs_khz):
    if scs_khz == 30 and rate_hz < 7.68e6:
        with pytest.raises(ValueError, match="too low"):
            nr.Numerology.create(scs_khz, rate_hz)
        return
    num = nr.Numerology.create(scs_khz, rate_hz)
    assert num.fft_size == rate_hz / (scs_khz * 1e3)
    # 0.5 ms holds 7 * 2^mu symbols incl. one long CP (TS 38.211 §5.3.1)
    half_sf = num.symbol_starts(7 * 2**num.mu)[-1]
    assert half_sf == rate_hz * 0.5e-3
    rng = np.random.default_rng(0)
    n_sym = num.symbols_per_subframe
    x = (rng.standard_normal((n_sym, num.fft_size)) + 1j * rng.standard_normal((n_sym, num.fft_size))).astype(np.complex64)
    cps = num.cp_lengths(np.arange(n_sym))
    assert cps[0] == num.cp_long and cps[7 * 2**num.mu] == num.cp_long and cps[1] == num.cp_short
    w = nr.ofdm_modulate(x, cps)
    starts = num.symbol_starts(n_sym)
    assert w.size == starts[-1] == num.samples_per_subframe
    for l in range(n_sym):
        s, c = starts[l], cps[l]
        np.testing.assert_array_equal(w[s : s + c], w[s + num.fft_size : s + num.fft_size + c])
    # modulation -> demodulation round trip (CP back-off compensated)
    y = nr.ofdm_demodulate(w, starts[:-1], cps, num.fft_size)
    np.testing.assert_allclose(y, x, atol=2e-5 * np.sqrt(num.fft_size))


def test_non_native_rate_is_rejected_with_reason():
    with pytest.raises(ValueError, match="not a native rate"):
        nr.Numerology.create(30, 19.5e6)
    with pytest.raises(ValueError, match="scs_khz"):
        nr.Numerology.create(20, 30.72e6)


def test_ssb_burst_cases_from_38213():
    assert list(nr.ssb_first_symbols("A", 4)) == [2, 8, 16, 22]
    assert list(nr.ssb_first_symbols("A", 8)) == [2, 8, 16, 22, 30, 36, 44, 50]
    assert list(nr.ssb_first_symbols("B", 4)) == [4, 8, 16, 20]
    assert list(nr.ssb_first_symbols("B", 8)) == [4, 8, 16, 20, 32, 36, 44, 48]
    assert list(nr.ssb_first_symbols("C", 4)) == [2, 8, 16, 22]
    with pytest.raises(ValueError, match="case"):
        nr.ssb_first_symbols("D", 4)
    with pytest.raises(ValueError, match="l_max"):
        nr.ssb_first_symbols("B", 64)


def test_subcarrier_bins_place_ssb_centre():
    num = nr.Numerology.create(30, 30.72e6)
    bins = nr.subcarrier_bins(num, -42 * 30e3)
    assert bins[nr.SSB_CENTER_SUBCARRIER] == num.fft_size - 42
    with pytest.raises(ValueError, match="multiple of the SCS"):
        nr.subcarrier_bins(num, 1000.0)
    with pytest.raises(ValueError, match="does not fit"):
        nr.subcarrier_bins(num, 467 * 30e3)


def test_bad_ids_raise():
    with pytest.raises(ValueError, match="pci"):
        nr.sss(1008)
    with pytest.raises(ValueError, match="n_id2"):
        nr.pss(3)
    with pytest.raises(ValueError, match="coded_bits"):
        nr.pbch_symbols(np.zeros(10), 1, 0, 8)
