"""The capacity model: a discrete-event simulation of users asking questions through the API functions, the
Cloud Tasks queue and the agents function, sized by the Terraform that deploys (``settings``) and fed with the
stage times ``make bench`` measures (``stage_times.yaml``). ``python -m capacity`` (``make capacity``) prints
question latency for 100 and 1,000 concurrent users under each environment's settings and the old ones.
"""
