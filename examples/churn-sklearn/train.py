"""Churn: gradient boosting on tenure, charges, support calls, contract and plan (scikit-learn), exported to ONNX."""
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import flywheel.onnx


def fit(ctx):
    numeric, categorical = ctx.features["numeric"], ctx.features["categorical"]
    prep = ColumnTransformer(
        [("num", "passthrough", numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    model = Pipeline([("prep", prep), ("gbm", GradientBoostingClassifier(random_state=ctx.seed, **ctx.params))])
    train, validation = ctx.frame("train"), ctx.frame("validation")
    model.fit(train[numeric + categorical], train[ctx.target])

    # One point per boosting stage: the validation loss curve, as a TF.js run logs per epoch.
    staged = model.named_steps["gbm"].staged_predict_proba(model.named_steps["prep"].transform(validation))
    for step, proba in enumerate(staged, start=1):
        if step % 10 == 0 or step == ctx.params["n_estimators"]:
            ctx.log_metrics({"val_loss": log_loss(validation[ctx.target], proba, labels=model.classes_)}, step=step)
    auc = roc_auc_score(validation[ctx.target] == model.classes_[1], model.predict_proba(validation)[:, 1])
    ctx.log_metrics({"val_auc": auc}, step=ctx.params["n_estimators"])
    ctx.save_model(*flywheel.onnx.from_sklearn(model, ctx))
