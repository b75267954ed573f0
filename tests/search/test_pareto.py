"""The Pareto front and the Pareto objective's pruning rule, on known answers."""

from nas.search import FrontPoint, pareto_front, write_front
from nas.search._study import dominated_median


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


def test_dominated_median_rule():
    done = [(10.0, [(50, 27.0), (100, 28.0)]), (12.0, [(50, 26.0), (100, 27.0)]), (30.0, [(50, 29.0), (100, 30.0)])]
    # a 20 ms trial is compared only with the two faster ones (median 26.5 at step 50)
    assert dominated_median(50, 26.0, 20.0, done, 2, 0) is True
    assert dominated_median(50, 26.6, 20.0, done, 2, 0) is False
    # the slow, strong trial does not count against a fast one; too few faster trials: no decision
    assert dominated_median(50, 20.0, 11.0, done, 2, 0) is False
    # warm-up steps and unknown steps never prune
    assert dominated_median(50, 1.0, 40.0, done, 1, 60) is False
    assert dominated_median(75, 1.0, 40.0, done, 1, 0) is False


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
