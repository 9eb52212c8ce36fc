"""The demo world's trainers, evaluators and bundle builder (`python -m training.demo.build`); what
the app reads at run time lives in `shared.demo`."""
