"""Sensitivity, search and compare spread over a Ray cluster, with the answers of one machine.

Nothing here imports ``ray`` until a cluster is opened (:func:`.session.open_cluster`); without
``--cluster`` the rest of speechquant never touches it.
"""
