"""Faults in the words a duty officer reads: one catalogue for Chinese and English, used
by the console, the page texts and the report drafts. The code (``system.down``) may
follow in brackets for the engineers; it is never the only name a person sees."""
from __future__ import annotations

from typing import Iterable

# fault label → (Chinese, English)
FAULTS: dict[str, tuple[str, str]] = {
    "power.on_battery": ("市电中断，UPS 电池供电", "Mains power lost, UPS on battery"),
    "power.low_battery": ("UPS 电池电量低，即将断电", "UPS battery low, power about to fail"),
    "power.ups_fault": ("UPS 故障", "UPS fault"),
    "power.ups_unreachable": ("UPS 无法连接", "UPS cannot be reached"),
    "queue.down": ("排队叫号系统无法访问", "Queue-number system unreachable"),
    "queue.stalled": ("排队叫号停滞，长时间未叫号", "Queue stalled: no number called for a long time"),
    "queue.congested": ("大厅拥堵，等候人数过多", "Hall congested: too many people waiting"),
    "pos.link_down": ("POS 机无法扣款（银行链路中断）", "POS cannot debit (bank link down)"),
    "pos.slow": ("POS 扣款缓慢", "POS payments slow"),
    "system.down": ("核心业务系统无法访问", "Core business system unreachable"),
    "system.slow": ("核心业务系统响应缓慢", "Core business system slow"),
    "system.cert_expiring": ("系统证书即将过期", "System certificate about to expire"),
    "network.down": ("网络中断", "Network down"),
    "network.loss": ("网络丢包严重", "Heavy network packet loss"),
    "network.latency": ("网络延迟过高", "Network latency high"),
    "network.dns": ("域名解析故障", "Name resolution (DNS) failing"),
    # incidents a person reports (no probe sees them): manual.<category>
    "manual.fire": ("火灾", "Fire"),
    "manual.natural_disaster": ("自然灾害", "Natural disaster"),
    "manual.epidemic": ("疫情", "Epidemic"),
    "manual.public_order": ("公共秩序事件", "Public order incident"),
    "manual.public_safety": ("公共安全事件", "Public safety incident"),
    "manual.attack": ("袭击事件", "Attack"),
    "manual.hardware": ("现场设备故障", "On-site equipment fault"),
    "manual.congestion": ("大厅拥堵", "Hall congestion"),
    "manual.power": ("供电故障", "Power fault"),
    "manual.network": ("网络故障", "Network fault"),
    "manual.core_system": ("核心业务系统故障", "Core business system fault"),
    "manual.pos": ("POS 支付故障", "POS payment fault"),
    "manual.queue": ("排队叫号系统故障", "Queue-number system fault"),
    "manual.enforcement": ("税务执法纠纷", "Tax enforcement dispute"),
    "manual.dispute": ("涉税纠纷", "Tax dispute"),
}

# incident category → (Chinese, English)
CATEGORIES: dict[str, tuple[str, str]] = {
    "power": ("供电", "Power"), "network": ("网络", "Network"), "core_system": ("核心业务系统", "Core business system"),
    "pos": ("POS 支付", "POS payment"), "queue": ("排队叫号", "Queue-number system"),
    "congestion": ("大厅拥堵", "Hall congestion"), "hardware": ("现场设备", "On-site equipment"),
    "public_safety": ("公共安全", "Public safety"), "other": ("其他", "Other"),
    "monitoring": ("监测盲区", "Monitoring blind spot"), "disputes": ("执法与涉税纠纷", "Enforcement and disputes"),
    "storm": ("告警风暴", "Alert storm"),
}


def _i(lang: str) -> int:
    return 1 if lang == "en" else 0


def fault_name(fault: str, lang: str = "zh", code: bool = True) -> str:
    """``市电中断，UPS 电池供电 (power.on_battery)``; an unknown fault by its category
    words if it has a known prefix, else by its code alone."""
    words = FAULTS.get(fault)
    if words is None and fault.startswith("manual."):
        cat = CATEGORIES.get(fault.removeprefix("manual."))
        words = cat
    if words is None:
        return fault
    return f"{words[_i(lang)]} ({fault})" if code else words[_i(lang)]


def fault_names(faults: Iterable[str], lang: str = "zh", code: bool = True) -> str:
    return ("；" if _i(lang) == 0 else "; ").join(fault_name(f, lang, code) for f in faults)


def category_name(category: str, lang: str = "zh") -> str:
    words = CATEGORIES.get(category)
    return words[_i(lang)] if words else category
