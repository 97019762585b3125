"""Claims of the dummy result."""
import pandas as pd

from experiments.report.claims import ClaimsOutput, ClaimSpec, Decision, SanitySpec, claims_main, reproduced_if

MEAN = ClaimSpec("dummy_result", "mean_high", "The mean value is high.", "nowhere", "extension", "1.0",
                 "mean >= min_mean", min_n=2, n_unit="values")
COUNT = SanitySpec("dummy_result", "count", "The step wrote n values.", "n")


def evaluate(args, th):
    df = pd.read_csv(args.values)
    d = MEAN.gate(len(df)) or Decision(reproduced_if(df["value"].mean() >= th["min_mean"]), float(df["value"].mean()),
                                        n=len(df))
    return ClaimsOutput([MEAN.row(d, scale=args.scale, model="none")],
                        [COUNT.row(scale=args.scale, model="none", value=len(df), passed=len(df) > 0)],
                        "The dummy section.")


def main(argv=None):
    claims_main(__doc__, {"values": {}}, evaluate, argv=argv)


if __name__ == "__main__":
    main()
