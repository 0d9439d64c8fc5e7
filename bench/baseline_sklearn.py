"""
bench:baseline, the scikit-learn side. bench/baseline.ts runs it with Debian's /usr/bin/python3 (python3-sklearn 1.2)
and hands it a spec: per data set the CSV path, features, target, Flywheel's training params, the exact row indices
of Flywheel's split (train / validation / holdout) and Flywheel's holdout predictions.

Every model here is fitted on split.train only (the rows Flywheel's gradient steps see; split.validation is used by
neither side for fitting) and scored on split.holdout. Preprocessing mirrors Flywheel's (training/preprocess.ts), fitted on
the training rows: numerics standardised, categoricals one-hot with unknown -> all zeros; a regression MLP also
learns a standardised target (TransformedTargetRegressor), as Flywheel's does.

Models
  constant          train mean / majority class (the floor)
  ridge / logreg    Ridge(alpha=1) / LogisticRegression(C=1): the linear baselines
  hgb               HistGradientBoosting{Regressor,Classifier}, defaults (100 iterations, early stopping on a 10 %
                    slice of the training rows since n > 10,000): the strong tabular baseline
  mlp_same_budget   MLP{Regressor,Classifier} with Flywheel's hidden layers, activation, adam, batch size, learning
                    rate and number of epochs (max_iter = epochs, no early stop)
  mlp_early_stop    the same MLP with sklearn's usual budget: up to 200 epochs, early stopping (10 % slice, patience 10)

oracle              the true conditional distribution the generator drew each label from (E[y | x], or the true
                    class probabilities): the best any model can do on these holdout rows, in expectation.

Flywheel's holdout metrics are recomputed here from its exported predictions with sklearn.metrics (a cross-check of
Flywheel's metric code), and ROC-AUC is added (binary; one-vs-rest macro for more classes), which Flywheel's
evaluation does not compute.

Usage: baseline_sklearn.py <spec.json>
Prints a table, then as the last line one JSON object with every figure and a verdict per data set.
"""
import csv
import json
import math
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error, r2_score, roc_auc_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import OneHotEncoder, StandardScaler

warnings.filterwarnings('ignore', category=ConvergenceWarning)

# Verdict thresholds (documented in bench/baseline.ts).
RMSE_RATIO_ON_PAR = 1.05
ACCURACY_GAP_ON_PAR = 0.01
LOG_LOSS_RATIO_ON_PAR = 1.10

ACTIVATIONS = {'relu': 'relu', 'tanh': 'tanh', 'sigmoid': 'logistic'}  # sklearn has no elu: relu stands in


def read_columns(path):
    with open(path, newline='') as f:
        reader = csv.reader(f)
        header = next(reader)
        columns = {name: [] for name in header}
        for row in reader:
            for name, value in zip(header, row):
                columns[name].append(value)
    return {name: np.array(values, dtype=object) for name, values in columns.items()}


def design(columns, ds, train, rows_list):
    """Flywheel's transform: standardise numerics, one-hot categoricals (unknown -> zeros), fitted on `train`."""
    parts = [[] for _ in rows_list]
    if ds['numeric']:
        num = np.column_stack([columns[name].astype(np.float64) for name in ds['numeric']])
        scaler = StandardScaler().fit(num[train])
        for i, rows in enumerate(rows_list):
            parts[i].append(scaler.transform(num[rows]))
    if ds['categorical']:
        cat = np.column_stack([columns[name] for name in ds['categorical']]).astype(str)
        encoder = OneHotEncoder(handle_unknown='ignore', sparse_output=False).fit(cat[train])
        for i, rows in enumerate(rows_list):
            parts[i].append(encoder.transform(cat[rows]))
    return [np.hstack(p).astype(np.float64) for p in parts]


def mlp_kwargs(ds, early_stop):
    hidden = tuple(ds['model']['hiddenUnits']) if ds['model']['type'] == 'mlp' else ()
    common = dict(
        hidden_layer_sizes=hidden or (1,),
        activation=ACTIVATIONS.get(ds['model']['activation'], 'relu'),
        solver='adam' if ds['optimizer'] == 'adam' else 'sgd',
        batch_size=ds['batch_size'],
        learning_rate_init=ds['learning_rate'],
        random_state=ds['seed'],
        shuffle=True,
    )
    if early_stop:
        return dict(common, max_iter=200, early_stopping=True, validation_fraction=0.1, n_iter_no_change=10)
    return dict(common, max_iter=ds['epochs'], tol=0.0, n_iter_no_change=ds['epochs'] + 1)


def regression_metrics(y, p):
    return {
        'rmse': float(math.sqrt(mean_squared_error(y, p))),
        'mae': float(mean_absolute_error(y, p)),
        'r2': float(r2_score(y, p)),
    }


def classification_metrics(y, proba, n_classes):
    proba = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
    out = {
        'accuracy': float(accuracy_score(y, proba.argmax(axis=1))),
        # Flywheel's log loss: −log p(true class), clipped at 1e-15, without renormalising the row.
        'log_loss': float(-np.mean(np.log(proba[np.arange(len(y)), y]))),
    }
    if n_classes == 2:
        out['roc_auc'] = float(roc_auc_score(y, proba[:, 1]))
    else:
        out['roc_auc_ovr_macro'] = float(roc_auc_score(y, proba / proba.sum(axis=1, keepdims=True), multi_class='ovr', average='macro'))
    return out


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def run_regression(ds, columns):
    split = ds['split']
    train, holdout = np.array(split['train']), np.array(split['holdout'])
    y_all = columns[ds['target']].astype(np.float64)
    y_train, y_hold = y_all[train], y_all[holdout]
    x_train, x_hold = design(columns, ds, train, [train, holdout])
    models = {
        'ridge': lambda: Ridge(alpha=1.0),
        'hgb': lambda: HistGradientBoostingRegressor(random_state=ds['seed']),
        'mlp_same_budget': lambda: TransformedTargetRegressor(regressor=MLPRegressor(**mlp_kwargs(ds, False)), transformer=StandardScaler()),
        'mlp_early_stop': lambda: TransformedTargetRegressor(regressor=MLPRegressor(**mlp_kwargs(ds, True)), transformer=StandardScaler()),
    }
    results = {'constant': dict(regression_metrics(y_hold, np.full(len(y_hold), y_train.mean())), seconds=0.0)}
    for name, make in models.items():
        model, seconds = timed(lambda: make().fit(x_train, y_train))
        results[name] = dict(regression_metrics(y_hold, model.predict(x_hold)), seconds=round(seconds, 2))
        if name.startswith('mlp'):
            inner = model.regressor_
            results[name]['epochs'] = int(inner.n_iter_)
        print(f'[baseline_sklearn] {ds["name"]}: {name} {fmt(results[name])}', file=sys.stderr, flush=True)
    flywheel_check = regression_metrics(y_hold, np.asarray(ds['flywheel']['outputs'], dtype=np.float64))
    oracle = regression_metrics(y_hold, np.asarray(ds['oracle'], dtype=np.float64)[:, 0]) if ds.get('oracle') else None
    return results, flywheel_check, oracle


def run_classification(ds, columns):
    split = ds['split']
    train, holdout = np.array(split['train']), np.array(split['holdout'])
    labels = columns[ds['target']].astype(str)
    classes = sorted(set(labels[train].tolist()))
    if classes != ds['flywheel']['classes']:
        raise SystemExit(f'{ds["name"]}: class order differs: sklearn {classes}, Flywheel {ds["flywheel"]["classes"]}')
    index = {c: i for i, c in enumerate(classes)}
    y_all = np.array([index.get(v, -1) for v in labels])
    y_train, y_hold = y_all[train], y_all[holdout]
    x_train, x_hold = design(columns, ds, train, [train, holdout])
    k = len(classes)
    models = {
        'logreg': lambda: LogisticRegression(C=1.0, max_iter=2000),
        'hgb': lambda: HistGradientBoostingClassifier(random_state=ds['seed']),
        'mlp_same_budget': lambda: MLPClassifier(**mlp_kwargs(ds, False)),
        'mlp_early_stop': lambda: MLPClassifier(**mlp_kwargs(ds, True)),
    }
    prior = np.bincount(y_train, minlength=k) / len(y_train)
    results = {'constant': dict(classification_metrics(y_hold, np.tile(prior, (len(y_hold), 1)), k), seconds=0.0)}
    for name, make in models.items():
        model, seconds = timed(lambda: make().fit(x_train, y_train))
        results[name] = dict(classification_metrics(y_hold, model.predict_proba(x_hold), k), seconds=round(seconds, 2))
        if name.startswith('mlp'):
            results[name]['epochs'] = int(model.n_iter_)
        print(f'[baseline_sklearn] {ds["name"]}: {name} {fmt(results[name])}', file=sys.stderr, flush=True)
    flywheel_check = classification_metrics(y_hold, np.asarray(ds['flywheel']['outputs'], dtype=np.float64).reshape(-1, k), k)
    oracle = classification_metrics(y_hold, np.asarray(ds['oracle'], dtype=np.float64), k) if ds.get('oracle') else None
    return results, flywheel_check, oracle


def fmt(metrics):
    return ' '.join(f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}' for k, v in metrics.items())


def r4(value):
    return None if value is None else round(float(value), 4)


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    report = {'bench': 'baseline', 'sklearn_version': sklearn.__version__, 'sklearn_fit_rows': 'split.train', 'data_sets': {}}
    table = []
    for ds in spec['data_sets']:
        columns = read_columns(ds['csv'])
        regression = ds['task'] == 'regression'
        results, check, oracle = (run_regression if regression else run_classification)(ds, columns)
        fw = ds['flywheel']
        fw_metrics = {k: v for k, v in fw['metrics'].items() if k != 'count'}
        # Cross-check: the metrics Flywheel reports equal sklearn's on Flywheel's predictions.
        check_diff = max(abs(fw_metrics[k] - check[k]) for k in check if k in fw_metrics)
        flywheel = dict(fw_metrics, **{k: v for k, v in check.items() if k not in fw_metrics},
                        epochs=fw['epochs'], seconds=round(fw['trainSeconds'], 2), final_loss=fw['finalLoss'], last_val_loss=fw.get('lastValLoss'))
        candidates = {k: v for k, v in results.items() if k != 'constant'}
        entry = {
            'task': ds['task'], 'description': ds['description'], 'rows': ds['rows'],
            'train_rows': len(ds['split']['train']), 'validation_rows': len(ds['split']['validation']), 'holdout_rows': len(ds['split']['holdout']),
            'params_from': ds['params_from'],
            'params': {'model': ds['model'], 'epochs': ds['epochs'], 'batch_size': ds['batch_size'], 'learning_rate': ds['learning_rate'], 'optimizer': ds['optimizer'], 'seed': ds['seed'], 'holdout_fraction': ds['holdout_fraction']},
            'flywheel_backend': fw['backend'],
            'flywheel': {k: (r4(v) if isinstance(v, float) else v) for k, v in flywheel.items()},
            'flywheel_metric_check_max_abs_diff': float(f'{check_diff:.3g}'),
            'sklearn': {name: {k: (r4(v) if isinstance(v, float) else v) for k, v in m.items()} for name, m in results.items()},
            'oracle': {k: r4(v) for k, v in oracle.items()} if oracle else None,
            'diagnostics': {name: dict({k: r4(v) for k, v in d['metrics'].items() if k != 'count'}, epochs=d['epochs'], seconds=round(d['trainSeconds'], 2),
                                       **({'best_epoch': d['bestEpoch']} if d.get('bestEpoch') else {}))
                            for name, d in ds['diagnostics'].items()},
        }
        diag_rows = []
        for n, d in ds['diagnostics'].items():
            label = 'flywheel ' + n.replace('flywheel_', '').replace('_', ' ')
            if d.get('bestEpoch'):
                label += f' (best ep {d["bestEpoch"]})'
            diag_rows.append((label, dict(d['metrics'], epochs=d['epochs'], seconds=d['trainSeconds'])))
        rows = [('flywheel (pipeline)', flywheel)] + diag_rows + [(f'sklearn {n}', m) for n, m in results.items()] + ([('oracle (true model)', oracle)] if oracle else [])
        key = 'rmse' if regression else 'accuracy'
        seeds = [fw_metrics[key]] + [d['metrics'][key] for n, d in ds['diagnostics'].items() if n.startswith('flywheel_seed_')]
        if len(seeds) > 1:
            entry[f'flywheel_seed_spread_{key}'] = [r4(min(seeds)), r4(max(seeds))]
        if regression:
            best_name = min(candidates, key=lambda n: candidates[n]['rmse'])
            best = candidates[best_name]
            ratio = flywheel['rmse'] / best['rmse']
            entry.update({
                'flywheel_rmse': r4(flywheel['rmse']), 'flywheel_r2': r4(flywheel['r2']),
                'sklearn_best_model': best_name, 'sklearn_best_rmse': r4(best['rmse']), 'sklearn_best_r2': r4(best['r2']),
                'ratio': r4(ratio),
                'flywheel_vs_same_mlp_rmse_ratio': r4(flywheel['rmse'] / results['mlp_same_budget']['rmse']),
                'oracle_rmse': r4(oracle['rmse']) if oracle else None,
                'verdict': 'on par' if ratio <= RMSE_RATIO_ON_PAR else 'behind',
                'verdict_rule': f'on par when flywheel_rmse / sklearn_best_rmse <= {RMSE_RATIO_ON_PAR}',
            })
            headers = ['model', 'rmse', 'mae', 'r2', 'epochs', 'fit s']
            body = [[name, m['rmse'], m['mae'], m['r2'], m.get('epochs', ''), m.get('seconds', '')] for name, m in rows]
        else:
            auc = 'roc_auc' if 'roc_auc' in flywheel else 'roc_auc_ovr_macro'
            best_name = max(candidates, key=lambda n: candidates[n]['accuracy'])
            best = candidates[best_name]
            best_ll_name = min(candidates, key=lambda n: candidates[n]['log_loss'])
            gap = best['accuracy'] - flywheel['accuracy']
            ll_ratio = flywheel['log_loss'] / candidates[best_ll_name]['log_loss']
            entry.update({
                'flywheel_accuracy': r4(flywheel['accuracy']), 'flywheel_log_loss': r4(flywheel['log_loss']), f'flywheel_{auc}': r4(flywheel[auc]),
                'sklearn_best_model': best_name, 'sklearn_best_accuracy': r4(best['accuracy']), f'sklearn_best_{auc}': r4(max(c[auc] for c in candidates.values())),
                'sklearn_best_log_loss_model': best_ll_name, 'sklearn_best_log_loss': r4(candidates[best_ll_name]['log_loss']),
                'accuracy_gap': r4(gap), 'log_loss_ratio': r4(ll_ratio),
                'oracle_accuracy': r4(oracle['accuracy']) if oracle else None, 'oracle_log_loss': r4(oracle['log_loss']) if oracle else None,
                'verdict': 'on par' if gap <= ACCURACY_GAP_ON_PAR and ll_ratio <= LOG_LOSS_RATIO_ON_PAR else 'behind',
                'verdict_rule': f'on par when sklearn_best_accuracy - flywheel_accuracy <= {ACCURACY_GAP_ON_PAR} and flywheel_log_loss / sklearn_best_log_loss <= {LOG_LOSS_RATIO_ON_PAR}',
            })
            headers = ['model', 'accuracy', 'log_loss', auc, 'epochs', 'fit s']
            body = [[name, m['accuracy'], m['log_loss'], m.get(auc, ''), m.get('epochs', ''), m.get('seconds', '')] for name, m in rows]
        report['data_sets'][ds['name']] = entry
        table.append((ds, entry, headers, body))

    for ds, entry, headers, body in table:
        print(f'\n== {ds["name"]}: {entry["description"]}')
        print(f'   split: train {entry["train_rows"]} (all models fit on these) / validation {entry["validation_rows"]} (unused) / holdout {entry["holdout_rows"]} (scored)')
        p = entry['params']
        print(f'   Flywheel params ({entry["params_from"]}): {p["model"]["type"]} {p["model"]["hiddenUnits"]} {p["model"]["activation"]}, '
              f'{p["epochs"]} epochs, batch {p["batch_size"]}, lr {p["learning_rate"]}, {p["optimizer"]}, seed {p["seed"]}; backend {entry["flywheel_backend"]}')
        widths = [max(len(str(h)), 36 if i == 0 else 9) for i, h in enumerate(headers)]
        print('   ' + '  '.join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
        for row in body:
            cells = []
            for i, (v, w) in enumerate(zip(row, widths)):
                text = f'{v:.4f}' if isinstance(v, float) and i < 4 else (f'{v:.1f}' if isinstance(v, float) else str(v))
                cells.append(text.ljust(w) if i == 0 else text.rjust(w))
            print('   ' + '  '.join(cells))
        if entry['task'] == 'regression':
            print(f'   verdict: {entry["verdict"]} — Flywheel rmse {entry["flywheel_rmse"]} vs best sklearn ({entry["sklearn_best_model"]}) {entry["sklearn_best_rmse"]}, ratio {entry["ratio"]}')
        else:
            print(f'   verdict: {entry["verdict"]} — Flywheel accuracy {entry["flywheel_accuracy"]} vs best sklearn ({entry["sklearn_best_model"]}) {entry["sklearn_best_accuracy"]} '
                  f'(gap {entry["accuracy_gap"]}); log loss {entry["flywheel_log_loss"]} vs {entry["sklearn_best_log_loss"]} ({entry["sklearn_best_log_loss_model"]})')
        spread = entry.get('flywheel_seed_spread_rmse') or entry.get('flywheel_seed_spread_accuracy')
        if spread:
            print(f'   Flywheel over 3 init/shuffle seeds on this split: {"rmse" if entry["task"] == "regression" else "accuracy"} {spread[0]} … {spread[1]}')
        print(f'   metric cross-check: Flywheel\'s own metrics vs sklearn.metrics on its predictions, max |diff| {entry["flywheel_metric_check_max_abs_diff"]}')
    report['verdicts'] = {name: e['verdict'] for name, e in report['data_sets'].items()}
    print(json.dumps(report))


if __name__ == '__main__':
    main()
