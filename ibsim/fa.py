"""The Financial Advisor configuration: requestFA (groups, profiles, aliases as IB's XML) and
replaceFA. Not served yet.
"""
