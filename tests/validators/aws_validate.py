"""Validate AWS inputs with botocore's own parameter validator.

Usage: aws_validate.py FILE... ; *.taskdef.json → ecs RegisterTaskDefinition,
*.service.json → ecs CreateService, *.apprunner-service.json → apprunner
CreateService. Exit 1 with the report on the first invalid file.
"""
import json
import sys

import botocore.session
from botocore.validate import ParamValidator

session = botocore.session.get_session()
operations = [
    (".apprunner-service.json", "apprunner", "CreateService"),
    (".taskdef.json", "ecs", "RegisterTaskDefinition"),
    (".service.json", "ecs", "CreateService"),
]
checked = 0
for path in sys.argv[1:]:
    match = next(((svc, op) for suffix, svc, op in operations if path.endswith(suffix)), None)
    if match is None:
        continue
    service, op = match
    with open(path) as f:
        params = json.load(f)
    shape = session.get_service_model(service).operation_model(op).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        print(f"{path}: {report.generate_report()}")
        sys.exit(1)
    checked += 1
    print(f"{path}: ok ({service} {op})")
if checked == 0:
    print("no AWS input files given")
    sys.exit(1)
