from django.shortcuts import get_object_or_404, render

from actions.models import Run


def run_detail(request, pk):
    run = get_object_or_404(Run.objects.select_related("action", "device"), pk=pk, user=request.user)
    return render(request, "actions/run_detail.html", {"run": run})
