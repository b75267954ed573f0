"""The Pareto front on known answers (the Pareto objective's pruning rule: test_policy.py)."""

from nas.search import FrontPoint, pareto_front, write_front


def _p(n, psnr, lat, feasible=True):
    return FrontPoint(n, f"s{n}", f"h{n}", psnr, lat, 1.0, lat + 1.0, 0.0, feasible=feasible)


def test_front_keeps_exactly_the_non_dominated_feasible_points():
    pts = [_p(0, 28.0, 10), _p(1, 29.0, 20), _p(2, 28.5, 25), _p(3, 30.0, 40), _p(4, 27.0, 10), _p(5, 31.0, 5, False),
           _p(6, 29.0, 20)]
    front = pareto_front(pts)
    on = sorted(p.number for p in front if p.on_front)
    # 2 is dominated by 1 (more PSNR, less latency); 4 by 0; 5 is infeasible; 1 and 6 tie (neither dominates)
    assert on == [0, 1, 3, 6]
    assert [p.latency_objective_ms for p in front] == sorted(p.latency_objective_ms for p in front)


def test_front_files(tmp_path):
    files = write_front(pareto_front([_p(0, 28.0, 10), _p(1, 29.0, 20), _p(2, 27.0, 30)]), tmp_path, title="t",
                        zoo=[{"name": "abpn", "psnr": 30.0, "latency_ms": 43.0, "latency_objective_ms": 49.0}])
    csv = files["csv"].read_text().splitlines()
    assert csv[0].startswith("number,spec,hash,psnr") and len(csv) == 3  # header + the 2 points on the front
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = files["html"].read_text()
    assert "Pareto front" in html and "abpn" in html and "plotly" in html.lower()


def test_front_figure_shows_what_can_be_compared_and_names_its_points():
    """The study's panel holds the trials, the bicubic line on the same images and the outside-range marks; the
    published zoo (another training, another data set) is in a panel of its own; every front point is keyed with its
    spec, and no two labels overlap even when the front is crowded."""
    import dataclasses

    from nas.search import front_figure
    from nas.search.pareto._plot import OUTSIDE

    # a crowded front: ten points 0.05 ms and 0.01 dB apart (a far trial behind them sets the axes' scale), every
    # other one outside the latency model's range
    pts = [dataclasses.replace(_p(i, 28.0 + 0.01 * i, 10 + 0.05 * i), spec=f"w{16 + i} d2 conv",
                               outside_range=i % 2 == 1) for i in range(10)] + [_p(10, 20.0, 200.0)]
    zoo = [{"name": "abpn", "psnr": 30.2, "latency_ms": 43.0, "latency_objective_ms": 49.0},
           {"name": "rfdn", "psnr": 30.4, "latency_ms": 80.0, "latency_objective_ms": 90.0}]
    fig = front_figure(pareto_front(pts), zoo, "t", 1.0, {"bicubic x3": 28.1})
    study, key, published = fig.axes
    ys = [y for c in study.collections for _, y in c.get_offsets()] + [y for ln in study.lines for y in ln.get_ydata()]
    assert 30.2 not in ys and 30.4 not in ys  # published figures are not on the proxy's axis
    assert sorted(y for _, y in published.collections[0].get_offsets()) == [30.2, 30.4]
    bicubic = [ln for ln in study.lines if ln.get_label().startswith("bicubic x3 on the same images")]
    assert len(bicubic) == 1 and list(bicubic[0].get_ydata()) == [28.1, 28.1]
    (outside,) = [c for c in study.collections if c.get_label() == OUTSIDE]
    assert len(outside.get_offsets()) == 5
    keyed = key.texts[0].get_text()
    assert all(f"#{i:<3d} w{16 + i} d2 conv" in keyed for i in range(10))
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in study.texts]
    assert len(boxes) == 10
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_budget_constraint_makes_a_trial_infeasible_and_keeps_it_off_the_front():
    import optuna

    from nas.search._study import trial_points

    st = optuna.create_study(directions=["maximize", "minimize"])
    for psnr, lat, budget_excess in ((28.0, 10.0, -5.0), (30.0, 20.0, 5.0)):
        t = st.ask()
        for k, v in {"int8_psnr": psnr, "latency_ms": lat, "latency_sigma_ms": 1.0, "latency_objective_ms": lat,
                     "log2_score": 0.0, "c_budget": budget_excess, "c_range": 0.0}.items():
            t.set_user_attr(k, v)
        t.set_constraint("latency_budget", budget_excess)
        st.tell(t, [psnr, lat])
    pts = pareto_front(trial_points(st))
    assert [(p.number, p.feasible, p.on_front) for p in pts] == [(0, True, True), (1, False, False)]
    assert dict(st.trials[1].constraints) == {"latency_budget": 5.0}


def test_hypervolume_is_the_area_the_front_dominates_inside_the_reference_box():
    from nas.search.pareto import hypervolume, hypervolume_history

    # (30 dB, 10 ms) and (29 dB, 5 ms) above 28 dB and below 20 ms: 2 x 10 + 1 x 5
    assert hypervolume([(30.0, 10.0), (29.0, 5.0)], 28.0, 20.0) == 25.0
    assert hypervolume([(27.5, 1.0), (31.0, 25.0)], 28.0, 20.0) == 0.0  # outside the box: nothing
    # in the order trials finish: a dominated point, a failed trial (None) and a point outside add nothing
    assert hypervolume_history([(29.0, 5.0), None, (30.0, 10.0), (28.5, 6.0), (27.0, 1.0)], 28.0, 20.0) == [
        15.0, 15.0, 25.0, 25.0, 25.0]


def test_pareto_ranks_peel_the_fronts_in_layers_and_leave_infeasible_points_out():
    from nas.search.pareto import FrontPoint, pareto_ranks

    def pt(n, psnr, ms, feasible=True):
        return FrontPoint(n, "", "", psnr, ms, 0.0, ms, 0.0, feasible=feasible)

    pts = [pt(0, 30.0, 10.0), pt(1, 29.0, 5.0), pt(2, 29.5, 12.0), pt(3, 28.0, 20.0), pt(4, 31.0, 1.0, False)]
    assert pareto_ranks(pts) == {0: 1, 1: 1, 2: 2, 3: 3}
