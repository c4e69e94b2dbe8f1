// Generated from schemas/service.schema.json by gen_schema_header.sh; do not edit.
#pragma once
namespace gedge::svc::detail {
inline constexpr const char* kServiceSchema = R"SCHEMA(
{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "$id": "https://gedge.invalid/schemas/service.schema.json",
  "title": "gedge service or pipeline file",
  "description": "GS-Engine's v1 short form (containers: [image, ...], ports: [number, ...]) and v2 container form (containers: [{image, ports: [{containerPort, protocol, externalPort}], resources, command, args, env}]), bare or wrapped as {service: {...}}, plus gedge's extensions (replicas, autoscale with metrics, vpa, limits, runtime, pin, scheduleHint) and kind: Pipeline with stages. Validated by gedge with valijson; unknown fields are errors.",
  "type": "object",
  "properties": {
    "apiVersion": {"type": "string", "enum": ["gedge/v1"]},
    "kind": {"type": "string", "enum": ["Service", "Pipeline"]},
    "service": {"$ref": "#/definitions/service"},
    "source": {"type": "string", "minLength": 1, "description": "Pipeline only: the device the data comes from (used by gedge sched)."},
    "stages": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"$ref": "#/definitions/stage"}},
    "name": {"$ref": "#/definitions/name"},
    "namespace": {"$ref": "#/definitions/name"},
    "type": {"$ref": "#/definitions/serviceType"},
    "replicas": {"$ref": "#/definitions/replicas"},
    "labels": {"$ref": "#/definitions/labels"},
    "containers": {"$ref": "#/definitions/containers"},
    "ports": {"$ref": "#/definitions/portNumbers"},
    "monitorPorts": {"$ref": "#/definitions/portNumbers"},
    "scheduleHint": {"$ref": "#/definitions/scheduleHint"},
    "autoscale": {"$ref": "#/definitions/autoscale"},
    "vpa": {"$ref": "#/definitions/vpa"},
    "limits": {"$ref": "#/definitions/limitRange"},
    "runtime": {"$ref": "#/definitions/runtime"},
    "pin": {"$ref": "#/definitions/pin"},
        "volumes": {"$ref": "#/definitions/volumes"},
        "networks": {"$ref": "#/definitions/networks"},
    "resources": {"$ref": "#/definitions/stageResources"},
    "compute_ms": {"$ref": "#/definitions/computeMs"},
    "output_mb": {"type": "number", "minimum": 0}
  },
  "additionalProperties": false,
  "definitions": {
    "name": {"type": "string", "minLength": 1, "maxLength": 50, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
    "serviceType": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
    "replicas": {"type": "integer", "minimum": 0, "maximum": 1000},
    "labels": {
      "type": "object",
      "maxProperties": 32,
      "additionalProperties": {"type": "string", "maxLength": 63, "pattern": "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"}
    },
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "portNumbers": {"type": "array", "maxItems": 64, "items": {"$ref": "#/definitions/port"}},
    "quantity": {"description": "A Kubernetes quantity (500m, 2, 0.5, 1e9, 512Mi, 1.5Gi); gedge also refuses negative and out-of-range amounts.", "type": ["string", "number"], "maxLength": 64, "pattern": "^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$", "minimum": 0},
    "resourceList": {
      "type": "object",
      "maxProperties": 16,
      "additionalProperties": {"$ref": "#/definitions/quantity"}
    },
    "containerPort": {
      "type": "object",
      "properties": {
        "containerPort": {"$ref": "#/definitions/port"},
        "protocol": {"type": "string", "enum": ["TCP", "UDP", "SCTP"]},
        "externalPort": {"$ref": "#/definitions/port"}
      },
      "required": ["containerPort"],
      "additionalProperties": false
    },
    "acceleration": {
      "type": "object",
      "properties": {
        "topologyAware": {"type": "boolean"},
        "compute": {
          "type": "object",
          "properties": {"gpu": {"type": "integer", "minimum": 0, "maximum": 64}},
          "additionalProperties": false
        },
        "network": {"type": "object"}
      },
      "additionalProperties": false
    },
    "envVar": {
      "type": "object",
      "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "value": {"type": "string"},
        "field": {"enum": ["metadata.name", "spec.nodeName", "status.hostIP"],
                  "description": "The downward API instead of `value`: on Kubernetes valueFrom.fieldRef; on container hosts metadata.name is the replica (gedge-SERVICE-REPLICA), spec.nodeName the device's name and status.hostIP the device's address as gedge reaches it (an IP address)."},
        "secret": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
                   "description": "The value of a secret instead of `value`: on container hosts the podman secret of this name on the device (podman run --secret NAME,type=env,target=VAR); on Kubernetes key VAR (this variable's name) of the Secret NAME. gedge creates the podman secrets of a Kubernetes manifest's secretKeyRef itself, named gedge-SERVICE-DIGEST."}
      },
      "required": ["name"],
      "allOf": [{"not": {"required": ["value", "secret"]}}, {"not": {"required": ["value", "field"]}},
                {"not": {"required": ["secret", "field"]}}],
      "additionalProperties": false
    },
    "container": {
      "description": "v1: an image reference (string); v2: a container object.",
      "type": ["string", "object"],
      "minLength": 1,
      "maxLength": 1024,
      "pattern": "^[^\\s]+$",
      "properties": {
        "name": {"$ref": "#/definitions/name"},
        "image": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^[^\\s]+$"},
        "ports": {"type": "array", "maxItems": 64, "items": {"$ref": "#/definitions/containerPort"}},
        "resources": {
          "type": "object",
          "properties": {
            "requests": {"$ref": "#/definitions/resourceList"},
            "limits": {"$ref": "#/definitions/resourceList"},
            "acceleration": {"$ref": "#/definitions/acceleration"}
          },
          "additionalProperties": false
        },
        "command": {"type": "array", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        "env": {"type": "array", "maxItems": 256, "items": {"$ref": "#/definitions/envVar"}}
      },
      "required": ["image"],
      "additionalProperties": false
    },
    "containers": {"type": "array", "minItems": 1, "maxItems": 16, "items": {"$ref": "#/definitions/container"}},
    "scheduleHint": {
      "type": "object",
      "properties": {
        "preferred": {"type": "string", "enum": ["local", "neighbor", "cloud"]},
        "nodeSelector": {"$ref": "#/definitions/labels"}
      },
      "additionalProperties": false
    },
    "autoscale": {
      "type": "object",
      "properties": {
        "min": {"type": "integer", "minimum": 1, "maximum": 1000},
        "max": {"type": "integer", "minimum": 1, "maximum": 1000},
        "cpu": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "target average CPU utilisation, percent of the request (default 80)"},
        "scaleDownWindow": {"type": "integer", "minimum": 0, "maximum": 3600, "description": "seconds (default 300)"},
        "scaleUpWindow": {"type": "integer", "minimum": 0, "maximum": 3600, "description": "seconds (default 0)"},
        "metrics": {
          "description": "HPA metrics (Kubernetes; container hosts scale on resource cpu only). Instead of cpu, not with it.",
          "type": "array", "minItems": 1, "maxItems": 16,
          "items": {"$ref": "#/definitions/autoscaleMetric"}
        }
      },
      "required": ["max"],
      "additionalProperties": false
    },
    "autoscaleMetric": {
      "type": "object",
      "properties": {
        "type": {"type": "string", "enum": ["resource", "pods", "external"], "description": "resource: averageUtilization of a container resource (cpu, memory); pods: a per-pod metric's AverageValue; external: an external metric's AverageValue"},
        "name": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": "^[A-Za-z_][A-Za-z0-9_.:/-]*$"},
        "target": {"$ref": "#/definitions/quantity", "description": "resource: percent of the request (integer); pods, external: the average value per pod"}
      },
      "required": ["type", "name", "target"],
      "additionalProperties": false
    },
    "vpa": {
      "description": "A VerticalPodAutoscaler (autoscaling.k8s.io/v1) for the Deployment (Kubernetes only): auto applies recommendations by recreating pods (updateMode Recreate), initial only at pod creation, off only recommends.",
      "type": "object",
      "properties": {"mode": {"type": "string", "enum": ["auto", "initial", "off"]}},
      "required": ["mode"],
      "additionalProperties": false
    },
    "limitRange": {
      "description": "A LimitRange (type Container) in the service's namespace: the smallest and largest resources any container there may ask for (Kubernetes only).",
      "type": "object",
      "properties": {"min": {"$ref": "#/definitions/resourceList"}, "max": {"$ref": "#/definitions/resourceList"}},
      "minProperties": 1,
      "additionalProperties": false
    },
    "runtime": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]*$"},
    "pin": {
      "type": "object",
      "properties": {
        "cores": {"type": "integer", "minimum": 1, "maximum": 1024},
        "near": {"type": "string", "minLength": 1},
        "noSmt": {"type": "boolean"}
      },
      "required": ["cores"],
      "additionalProperties": false
    },
    "stageResources": {
      "type": "object",
      "properties": {
        "cpu": {"$ref": "#/definitions/quantity"},
        "memory": {"$ref": "#/definitions/quantity"},
        "gpu": {"type": "integer", "minimum": 0, "maximum": 64}
      },
      "additionalProperties": false
    },
    "computeMs": {
      "type": ["number", "object"],
      "minimum": 0,
      "properties": {"gpu": {"type": "number", "minimum": 0}, "cpu": {"type": "number", "minimum": 0}},
      "additionalProperties": false
    },
    "volume": {
      "description": "A volume mounted at mountPath in every container of the service. Exactly one source: claim (a PersistentVolumeClaim; rendered too when size is given; a named podman volume on container hosts), nfs (a podman volume of the local driver on container hosts), emptyDir (tmpfs on container hosts) or hostPath (a bind mount).",
      "type": "object",
      "properties": {
        "name": {"$ref": "#/definitions/name"},
        "mountPath": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^/[^:,]*$"},
        "readOnly": {"type": "boolean"},
        "claim": {"$ref": "#/definitions/name"},
        "size": {"$ref": "#/definitions/quantity"},
        "accessMode": {"type": "string", "enum": ["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"]},
        "storageClass": {"type": "string", "minLength": 1, "maxLength": 253},
        "nfs": {
          "type": "object",
          "properties": {
            "server": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": "^[^\\s,:]+$"},
            "path": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^/[^,]*$"}
          },
          "required": ["server", "path"],
          "additionalProperties": false
        },
        "emptyDir": {
          "type": "object",
          "properties": {
            "medium": {"type": "string", "enum": ["", "Memory"]},
            "sizeLimit": {"$ref": "#/definitions/quantity"}
          },
          "additionalProperties": false
        },
        "hostPath": {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^/[^:,]*$"}
      },
      "required": ["name", "mountPath"],
      "additionalProperties": false
    },
    "volumes": {"type": "array", "maxItems": 32, "items": {"$ref": "#/definitions/volume"}},
    "network": {
      "description": "An extra pod network: macvlan/ipvlan/bridge render a Multus NetworkAttachmentDefinition (k8s.cni.cncf.io/v1) and the pod annotation k8s.v1.cni.cncf.io/networks; sriov also requests one virtual function of `resource`. On container hosts a macvlan network with an IPv4 `subnet` is a podman macvlan network gedge-net-DIGEST on `master`, each device handing out addresses from its own block of the subnet; other types are refused there.",
      "type": "object",
      "properties": {
        "name": {"$ref": "#/definitions/name"},
        "type": {"type": "string", "enum": ["macvlan", "ipvlan", "bridge", "sriov"]},
        "master": {"type": "string", "minLength": 1, "maxLength": 15, "pattern": "^[A-Za-z0-9_.-]+$"},
        "subnet": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[0-9A-Fa-f:.]+/[0-9]{1,3}$"},
        "resource": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": "^[A-Za-z0-9.-]+/[A-Za-z0-9_.-]+$"}
      },
      "required": ["name", "type"],
      "additionalProperties": false
    },
    "networks": {"type": "array", "maxItems": 8, "items": {"$ref": "#/definitions/network"}},
    "service": {
      "type": "object",
      "properties": {
        "name": {"$ref": "#/definitions/name"},
        "namespace": {"$ref": "#/definitions/name"},
        "type": {"$ref": "#/definitions/serviceType"},
        "replicas": {"$ref": "#/definitions/replicas"},
        "labels": {"$ref": "#/definitions/labels"},
        "containers": {"$ref": "#/definitions/containers"},
        "ports": {"$ref": "#/definitions/portNumbers"},
        "monitorPorts": {"$ref": "#/definitions/portNumbers"},
        "scheduleHint": {"$ref": "#/definitions/scheduleHint"},
        "autoscale": {"$ref": "#/definitions/autoscale"},
    "vpa": {"$ref": "#/definitions/vpa"},
    "limits": {"$ref": "#/definitions/limitRange"},
        "runtime": {"$ref": "#/definitions/runtime"},
        "pin": {"$ref": "#/definitions/pin"},
        "volumes": {"$ref": "#/definitions/volumes"},
        "networks": {"$ref": "#/definitions/networks"},
        "resources": {"$ref": "#/definitions/stageResources"},
        "compute_ms": {"$ref": "#/definitions/computeMs"},
        "output_mb": {"type": "number", "minimum": 0}
      },
      "required": ["name", "containers"],
      "additionalProperties": false
    },
    "stage": {
      "type": "object",
      "properties": {
        "name": {"$ref": "#/definitions/name"},
        "after": {"type": "array", "maxItems": 64, "items": {"$ref": "#/definitions/name"}},
        "type": {"$ref": "#/definitions/serviceType"},
        "replicas": {"$ref": "#/definitions/replicas"},
        "labels": {"$ref": "#/definitions/labels"},
        "containers": {"$ref": "#/definitions/containers"},
        "ports": {"$ref": "#/definitions/portNumbers"},
        "monitorPorts": {"$ref": "#/definitions/portNumbers"},
        "scheduleHint": {"$ref": "#/definitions/scheduleHint"},
        "autoscale": {"$ref": "#/definitions/autoscale"},
    "vpa": {"$ref": "#/definitions/vpa"},
    "limits": {"$ref": "#/definitions/limitRange"},
        "runtime": {"$ref": "#/definitions/runtime"},
        "pin": {"$ref": "#/definitions/pin"},
        "volumes": {"$ref": "#/definitions/volumes"},
        "networks": {"$ref": "#/definitions/networks"},
        "resources": {"$ref": "#/definitions/stageResources"},
        "compute_ms": {"$ref": "#/definitions/computeMs"},
        "output_mb": {"type": "number", "minimum": 0}
      },
      "required": ["name", "containers"],
      "additionalProperties": false
    }
  }
}
)SCHEMA";
}  // namespace gedge::svc::detail
